import cogvx.expert_dit as dit


def test_every_public_name_resolves():
    for name in dit.__all__:
        assert getattr(dit, name) is not None, name
    assert sorted(dit.__all__) == dit.__all__
