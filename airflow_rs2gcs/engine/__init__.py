"""The transfer engine: row source (cursor batches as Arrow) -> encoders -> uploader -> manifest (last).

Importing the engine selects the system allocator for Arrow (``ARROW_DEFAULT_MEMORY_POOL=system``)
unless the variable is already set. Arrow reads it once, when pyarrow first allocates, so it must be
set before pyarrow is imported. Arrow's default allocator (mimalloc) let the RSS grow at every Parquet
row group; the system allocator (trimmed after each batch, see :mod:`airflow_rs2gcs.engine.memory`)
keeps the export's RSS flat at the same speed. The measurements are in ``bench/README.md``.
"""

import os

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
