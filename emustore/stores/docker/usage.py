"""`docker system df` for images and layers: total, shared and unique sizes (daemon/disk_usage.go)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from emustore.stores.docker.catalog import Catalog, CatalogImage


@dataclass(frozen=True)
class ImageUsage:
    image: CatalogImage
    shared_size: int  # layers also used by another listed image
    containers: int

    @property
    def unique_size(self) -> int:
        return self.image.size - self.shared_size


@dataclass(frozen=True)
class LayerUsage:
    chain_id: str
    diff_id: str
    size: int
    images: int  # how many listed images have this layer in their chain


@dataclass(frozen=True)
class DiskUsage:
    images: list[ImageUsage]
    layers: list[LayerUsage]
    layers_size: int  # every loaded layer, used or not (docker's Images SIZE)

    @property
    def active(self) -> int:
        return sum(1 for usage in self.images if usage.containers)

    @property
    def reclaimable(self) -> int:
        """What deleting every image without a container would free."""
        return self.layers_size - sum(u.unique_size for u in self.images if u.containers)


def disk_usage(catalog: Catalog) -> DiskUsage:
    images = catalog.heads()
    refs: Counter[str] = Counter(chain for image in images for chain in image.chain_ids)
    layers = catalog.layers()
    users = Counter(c.image_id for c in catalog.containers())
    image_usage = [
        ImageUsage(image, sum(layers[c].size for c in image.chain_ids if refs[c] > 1), users[image.id])
        for image in images
    ]
    layer_usage = sorted(
        (LayerUsage(chain, layer.diff_id, layer.size, refs[chain]) for chain, layer in layers.items()),
        key=lambda u: (-u.size, u.chain_id),
    )
    return DiskUsage(image_usage, layer_usage, sum(layer.size for layer in layers.values()))
