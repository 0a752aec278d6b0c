"""The supervisor's hold on its port: a second one on the same port is refused."""

import pytest

from app.process_listeners import PortTaken, hold_port, per_process_listeners

pytestmark = pytest.mark.skipif(not per_process_listeners(), reason="Linux only")


def test_a_port_is_held_by_one_supervisor_at_a_time() -> None:
    with hold_port(40123):
        with pytest.raises(PortTaken) as refused, hold_port(40123):
            pass
        assert str(refused.value) == "port 40123 is in use by another trainserve api"
        with hold_port(40124):  # another port is another hold
            pass
    with hold_port(40123):  # released when the first supervisor let go
        pass
