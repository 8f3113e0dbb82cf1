"""The train / test split of an image pool (Sect. 5.2: 90,000 / 10,000), computed in one
place for the run spec's limits, the generated sources and STL-10."""

import pytest

from diffnet_tf import protocols


@pytest.mark.parametrize("total", [0, 1, 9, 10, 20, 95, 100_000, 100_003])
def test_the_splits_are_disjoint_and_cover_the_pool(total):
    (train_first, train_count), (test_first, test_count) = (
        protocols.split_range(split, total) for split in protocols.SPLITS)
    assert train_first == 0 and test_first == train_count  # train first, test after it
    assert train_count + test_count == total
    assert abs(test_count - 0.1 * total) <= 0.5  # 10 %, rounded


def test_the_papers_pool_splits_into_90000_and_10000_images():
    assert (protocols.TRAIN_IMAGES, protocols.TEST_IMAGES) == (90_000, 10_000)
    assert protocols.split_range("test", protocols.POOL_SIZE) == (90_000, 10_000)


def test_an_unknown_split_is_refused():
    with pytest.raises(ValueError, match="Unknown split 'validation'. Expected one of 'train'"):
        protocols.split_range("validation", 100)
