from llmsafespace.devstack.ports import free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    # Without the guard the kernel offers one of its recent ports again within a few
    # thousand binds, and two services of a stack would share it.
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)
