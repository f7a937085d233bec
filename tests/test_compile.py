"""``torch.compile`` through mmengine's ``compile=True`` (it compiles the
model's ``train_step``): the tiny LoMaR, LocalMIM and MAE configs train
through tools/train.py's entry point with the same losses as eager."""
import math

import pytest
from test_mixed_precision import train

STEPS = 2


@pytest.mark.slow
@pytest.mark.parametrize('name', ['lomar', 'localmim-hog', 'mae'])
def test_compiled_step_matches_eager(name, synthetic_data, tmp_path,
                                     monkeypatch):
    """Inductor on the CPU, with PyTorch's own random generator for the
    compiled graphs (``fallback_random``) so that both runs draw the same
    windows and masks; the losses of the first steps then agree to float
    rounding."""
    import torch._dynamo
    import torch._inductor.config as inductor_config
    monkeypatch.setattr(inductor_config, 'fallback_random', True)
    root, _ = synthetic_data
    _, eager = train(name, root, str(tmp_path / 'eager'))
    torch._dynamo.reset()
    runner, compiled = train(name, root, str(tmp_path / 'compiled'),
                             options=['compile=True'])
    from torch._dynamo.utils import counters
    graphs = dict(counters['stats'])
    print(f'{name}: eager {eager}, compiled {compiled}, dynamo {graphs}, '
          f'graph breaks {dict(counters["graph_break"])}')
    # the forward and loss went through dynamo and inductor
    assert graphs.get('unique_graphs', 0) >= 1
    assert counters['inductor'], 'inductor compiled nothing'
    assert len(eager) == len(compiled)
    for e, c in zip(eager, compiled):
        assert math.isfinite(c)
        assert abs(e - c) <= 1e-4 * abs(e) + 1e-5, (eager, compiled)
