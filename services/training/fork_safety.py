"""Imported first by the training service (its __main__), before gRPC loads.

The fit workers (pool.py) are started by the service's event loop, and uvicorn's loop (uvloop)
starts a process with fork then exec. gRPC's Python wheels turn its fork support on, and its
fork handlers start threads in the forked child: while other threads were calling into gRPC
(the Dapr SDK's, the workflow worker's) they crashed the child before its exec (SIGSEGV in
cygrpc; every replacement worker died so and training went unhealthy). Nothing here forks
without exec'ing, which is all fork support is for, so it is off unless asked for.
"""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
