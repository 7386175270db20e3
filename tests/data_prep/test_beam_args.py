"""data_prep/beam_args.py: what every Beam job adds for portable runners (tests/e2e/test_portable.py runs them)."""
import importlib
import os

from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, SetupOptions

from data_prep.beam_args import JOB_SERVER_TIMEOUT_S, PLUGIN, complete


def test_adds_the_worker_plugin_and_a_job_server_timeout_once():
    args = complete(["--runner=PortableRunner", "--job_endpoint=127.0.0.1:8099"])
    assert complete(args) == args
    options = PipelineOptions(args)
    assert options.view_as(SetupOptions).beam_plugins == [PLUGIN] == ["data_prep.beam_args"]
    assert options.view_as(PortableOptions).job_server_timeout == JOB_SERVER_TIMEOUT_S


def test_keeps_the_users_timeout_and_plugins():
    for given in (["--job_server_timeout=30"], ["--job_server_timeout", "30"], ["--job-server-timeout=30"]):
        options = PipelineOptions(complete(["--beam_plugins=my.plugin", *given]))
        assert options.view_as(PortableOptions).job_server_timeout == 30
        assert options.view_as(SetupOptions).beam_plugins == ["my.plugin", PLUGIN]


def test_the_plugin_sets_legacy_keras(monkeypatch):
    import data_prep.beam_args as module

    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    importlib.reload(module)
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
