"""What user code finds inside every sandbox, on every driver: its environment
(``environment``), its ``bin`` with ``python``/``pip``/``npm`` and its Python startup hook
(``tools``, ``sitecustomize``).

The local driver writes the tools on the host and binds them; the runtime images run
``tools`` at build time (``python3 -m userland.tools /opt/runtime``), so the modules of
this package other than ``environment`` import nothing outside it and the standard library.
"""
