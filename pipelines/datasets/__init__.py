"""The datasets the fetch stage prepares, each an adapter behind one interface (``base.Dataset``).

``DATASETS`` maps every ``data.dataset`` value to its adapter, configured for the real release
(packaged checksums, expected sizes). Adding a dataset is one module with one ``Dataset``
subclass and one entry here. Nothing is read at import.
"""

from pipelines.datasets.base import SPLITS, Clip, Dataset, DatasetError, Listing, Structure
from pipelines.datasets.esc import Esc10, Esc50
from pipelines.datasets.fsdd import Fsdd
from pipelines.datasets.urbansound8k import UrbanSound8K

DATASETS: dict[str, Dataset] = {
    adapter.name: adapter for adapter in (Esc50(), Esc10(), Fsdd(), UrbanSound8K())
}

__all__ = [
    "DATASETS",
    "SPLITS",
    "Clip",
    "Dataset",
    "DatasetError",
    "Esc10",
    "Esc50",
    "Fsdd",
    "Listing",
    "Structure",
    "UrbanSound8K",
]
