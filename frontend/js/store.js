// The page's state: one store, each section owning its own part of it.

export const state = {
  native: false,
  types: [], // list_types().types
  defaultType: "",
  weights: [], // list_weights().weights
  defaultWeights: "",
  pathologyNames: [], // name of each of the 18 heads, from any set that trains it
  weightsChoice: {}, // weights kinds (e.g. "a,b") -> chosen name
  labelChoice: new Map(), // option name -> {all, chosen: Set} for options whose choices are the weights' labels
  filenameEdited: false, // the output name no longer follows type + format
  folders: [], // folders at the current depth (relative posix paths)
  foldersKey: "", // root|depth the list belongs to
  selected: new Set(),
  allMode: true, // "select all" stays on when the list refreshes
  datesColumns: [],
  validation: { seq: 0, valid: false, ready: false, problems: [], readiness: [], defaultWeights: "", outputPath: "" },
  touched: new Set(), // fields the user has filled in (a problem of an untouched empty field is not shown in red)
  overwrite: "", // the output name the user chose to replace
  download: null, // job id of a weights download
  backend: { instance: "", workspace: "", lost: false },
  job: null, // {id, options, state}
  lastJob: null, // options + output of the last finished job: the context of its table
  files: [],
  table: { path: "", offset: 0, total: 0, columns: [], rows: [], picked: -1, seq: 0, saliency: false, maps: new Map() },
};

export const TERMINAL = new Set(["done", "failed", "cancelled"]);
