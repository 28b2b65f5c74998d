"""The ``softlog-numerics`` command: :mod:`.main` parses the command line and dispatches to one
module per subcommand (:mod:`.accuracy`, :mod:`.audit`, :mod:`.exhaustive`, :mod:`.regions`,
:mod:`.report`), each with ``register(subparsers)`` and ``run(args)``. The top layer: nothing
imports it but ``python -m softlog_numerics``.
"""
