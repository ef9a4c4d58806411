"""``radfeat demo``: a small synthetic patient-folder dataset with a dates CSV, extracted end to end."""

from __future__ import annotations

from pathlib import Path

from radfeat.options import ExtractOptions, MasterTableOptions
from radfeat.pipeline.run import extract
from radfeat.synthetic import make_dataset, random_checkpoint
from radfeat.weights.catalog import Catalog
from radfeat.weights.download import DownloadError, fetch
from radfeat.weights.registration import add_weights

DEMO_WEIGHTS = "demo-random"


def _demo_weights(name: str | None) -> str:
    """The requested/default weights if available, else a random-initialised stand-in (clearly labelled)."""
    catalog = Catalog()
    wset = catalog.get(name)
    if wset.downloaded:
        return wset.name
    try:
        fetch(wset)
        return wset.name
    except DownloadError as exc:
        if name:
            raise
        print(f"Could not download {wset.name} ({exc}).")
    if DEMO_WEIGHTS in catalog:
        return DEMO_WEIGHTS
    import tempfile

    print(f"Using a random-initialised DenseNet-121 as '{DEMO_WEIGHTS}': the numbers are meaningless, "
          "the pipeline is real.")
    from radfeat.weights.home import scratch_dir

    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:  # never $TMPDIR
        add_weights(DEMO_WEIGHTS, random_checkpoint(Path(tmp) / "demo.pt"))
    return DEMO_WEIGHTS


def run_demo(where: Path, weights: str | None = None, n_patients: int = 4) -> int:
    where = Path(where).resolve()
    data = where / "images"
    dates = where / "image_dates.csv"
    if not data.exists():
        make_dataset(data, n_patients=n_patients, per_folder=3, depth=1, size=(1024, 896), dates_csv=dates)
    name = _demo_weights(weights)
    print(f"Dataset: {data} ({n_patients} patients); dates: {dates}")
    summary = extract(ExtractOptions(input=str(data), weights=name, workspace=str(where)), log=print)
    print(f"Table: {summary.output} ({summary.ok} rows, {summary.images_per_s:.1f} images/s)")
    master = extract(ExtractOptions(
        input=str(data), weights=name, workspace=str(where), filename="image_master_table.csv",
        master_table=MasterTableOptions(dates_csv=str(dates), filename_column="image", date_column="taken_at",
                                        patient_level=1, patient_id_int=True)), log=print)
    print(f"Master table: {master.output} ({master.master_table['rows']} rows)")
    return 0
