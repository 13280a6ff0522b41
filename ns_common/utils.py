"""Logging, seeding, device selection and distributed helpers shared by every stage."""

import logging
import os
import random
import sys
import time

import numpy as np

logger = logging.getLogger("neural_search")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("[%(asctime)s] [%(levelname)7s] %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def set_seed(seed):
    import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def set_device(device):
    """'cpu' or 'gpu' (or 'gpu:N'); a clear error when a GPU is asked for on a CPU-only build."""
    import paddle

    if device.startswith("gpu") and not paddle.device.is_compiled_with_cuda():
        from ns_common.errors import ConfigError

        raise ConfigError(
            f"--device {device}: this paddle build has no CUDA support; install paddlepaddle-gpu or use --device cpu"
        )
    if device == "gpu" and world_size() > 1:
        # under paddle.distributed.launch each process drives the GPU the launcher gave it
        paddle.set_device(f"gpu:{paddle.distributed.ParallelEnv().dev_id}")
    else:
        paddle.set_device(device)
    if device == "cpu":
        # paddle 3's strided views (a transpose without a copy) make attention's matmuls ~10x slower on
        # CPU: a mini ERNIE-Gram forward of 64 x 46 tokens took 0.45 s with them, 0.08 s without
        paddle.set_flags({"FLAGS_use_stride_kernel": False})


def world_size():
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank():
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def is_main_process():
    return rank() == 0


def leave_together() -> None:
    """The last call of a training script's main under paddle.distributed.launch (a no-op in one process):
    every process meets at a barrier, then leaves at once, without the interpreter's teardown.
    gloo's sockets and the rendezvous store are closed by C++ destructors at exit, in no fixed order across
    the processes; one whose peer has already gone can abort there (SIGABRT, the launcher's "Exit code -6")
    after a complete run, a barrier before the exit or not (seen in CI). Every file written is closed by
    then; the logs are flushed here."""
    if world_size() <= 1:
        return
    import paddle

    paddle.distributed.barrier()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def init_distributed():
    """Initialises the parallel environment when started by paddle.distributed.launch with >1 process."""
    import paddle

    if world_size() > 1:
        paddle.distributed.init_parallel_env()
        return True
    return False


class Timer:
    def __init__(self):
        self.start = time.time()

    @property
    def seconds(self):
        return time.time() - self.start


def quiet_paddlenlp():
    """PaddleNLP logs a lot at INFO (every from_pretrained); keep its warnings only."""
    try:
        from paddlenlp.utils.log import logger as pnlp_logger

        pnlp_logger.set_level("WARNING")
    except Exception:  # noqa: BLE001 - logging cosmetics must never break a run
        pass


def start_training(args):
    """The first lines of every training script: quiet logs, the device, the process group under
    paddle.distributed.launch, and the seed."""
    quiet_paddlenlp()
    set_device(args.device)
    init_distributed()
    set_seed(args.seed)
