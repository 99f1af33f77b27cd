from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cogvx.evals.flow import DISFlow


def test_dis_flow_is_safe_to_share_between_threads():
    """The captioner calls one backend from several reader threads at once."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 2 * i, axis=1) for i in range(4)])
    flow = DISFlow(preset="fast")
    expected = flow(frames)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: flow(frames), range(8)))
    for r in results:
        np.testing.assert_allclose(r, expected)
    assert abs(float(np.median(expected[..., 0])) - 2.0) < 0.5
