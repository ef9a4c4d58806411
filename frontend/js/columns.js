// What a table's column names say: identifying columns, feature vectors, predictions, saliency listings.

export const DENSE_RE = /(densefeatures?|resnetfeatures|latent)_\d+$/i; // per-image feature vectors
// a feature column: <prefix>_<family>_<i> (dense, ResNet, latent, ONNX outputs) or <prefix>_fractal_<feature>
export const FEATURE_RE = /^[A-Za-z0-9]+_(fractal_[A-Za-z0-9_]+|[A-Za-z0-9_]+_\d+)$/;
export const PRED_RE = /predictions?_(\d+)$/i;
export const LEVEL_RE = /^level_(\d+)$/i;
export const SALIENCY_COLUMNS = ["method", "style", "path"];
