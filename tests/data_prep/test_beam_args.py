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


def test_conversion_mode_by_size_when_nothing_chose_it():
    from data_prep.beam_args import MULTI_PROCESS_FROM, MULTI_PROCESS_MIN_CORES, conversion_mode

    assert MULTI_PROCESS_MIN_CORES == 4
    args = complete(["--runner=DirectRunner"])
    assert conversion_mode(args, MULTI_PROCESS_FROM - 1, cores=8)[0] == []  # in-process
    extra, why = conversion_mode(args, MULTI_PROCESS_FROM, cores=8)
    assert extra == ["--direct_running_mode=multi_processing", "--direct_num_workers=8"]
    assert "multi_processing, 8 workers" in why
    options = PipelineOptions(args + extra).get_all_options()
    assert (options["direct_running_mode"], options["direct_num_workers"]) == ("multi_processing", 8)
    # two cores shared with the launcher (this machine): two workers measured slower than one
    assert conversion_mode(args, 10**6, cores=2) == ([], "DirectRunner in-process, 1 worker (2 cores < 4)")
    assert conversion_mode([], 10**6, cores=4)[0][-1] == "--direct_num_workers=4"  # no --runner: DirectRunner


def test_conversion_mode_leaves_a_chosen_mode_and_other_runners_alone():
    from data_prep.beam_args import conversion_mode

    for given in (["--direct_num_workers=1"], ["--direct_running_mode=multi_threading"],
                  ["--direct_num_workers", "3"], ["--runner=PortableRunner", "--job_endpoint=x:1"],
                  ["--runner", "DataflowRunner"], ["--runner=FlinkRunner"]):
        extra, why = conversion_mode(["--runner=DirectRunner", *given], 10**6, cores=8)
        assert extra == [], given
    assert "PortableRunner" in conversion_mode(["--runner=DirectRunner", "--runner=PortableRunner"], 10**6)[1]
