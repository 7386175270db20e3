"""Fixtures of the Kubeflow runner tests (one compile shared by all of them)."""
import json
import threading
from http.server import ThreadingHTTPServer

import pytest

import kubeflow_runner
from tests.kubeflow.helpers import DATAFLOW_ARGS, IMAGE, PIPELINE_ROOT, Guards, KfpStub, cluster_config


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kfp")
    config_path = cluster_config(tmp)
    out = tmp / "out" / "pipeline.json"
    with pytest.MonkeyPatch.context() as mp:
        guards = Guards(mp, allow_loopback=False)
        rc = kubeflow_runner.main(["--config", config_path, "--pipeline-root", PIPELINE_ROOT + "/",
                                   "--image", IMAGE, "--compile-only", "--output", str(out)]
                                  + [f"--beam-arg={a}" for a in DATAFLOW_ARGS])
        # The guard itself works: a gs:// read under it is seen and refused.
        import tensorflow as tf
        with pytest.raises(OSError, match="test guard: no remote storage"):
            tf.io.gfile.exists("gs://bucket/probe")
        probe = guards.gs_calls.pop()
    assert rc == 0
    text = out.read_text()
    return {"tmp": str(tmp), "config_path": config_path, "json_path": str(out), "text": text,
            "job": json.loads(text), "guards": guards, "probe": probe}



@pytest.fixture
def kfp_stub(monkeypatch, tmp_path):
    import kfp.client.client as kfp_client

    # No user kfp context file may change what the client sends.
    monkeypatch.setattr(kfp_client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "no-context.json"))
    KfpStub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KfpStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", KfpStub.requests
    server.shutdown()
    server.server_close()

