from llmsafespace.devstack.ports import free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    # Without the guard, a thousand binds to port 0 got 26-39 ports the kernel had
    # offered before (five runs here): two services of a stack could share one.
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)
