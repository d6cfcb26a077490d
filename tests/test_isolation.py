"""What a target's code may not do to the CLI's process (rflint/cli/isolation.py, cli/run.py's pools):
end the run with its own exit code, write into the report on stdout, change the next target's
analysis, take the other targets' reports down with its worker, or keep the run from ending."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from rflint.cli.app import app

runner = CliRunner()

# Six 3x3 convs at 8 px: conv i reads r = 2i + 1, so conv 4 (r 9 > 8) is the border, conv 5 the
# tail's last layer: RF002 (an error) and RF001 on "4" and "5"
DEEP = textwrap.dedent("""
    import torch.nn as nn


    def build():
        return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(6)])
""")


def _model(body: str) -> str:
    return textwrap.dedent("""
        import os
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(3, 8, 3, padding=1)

            def forward(self, x):
        """) + textwrap.indent(textwrap.dedent(body), " " * 8) + "        return self.c(x)\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "deep.py").write_text(DEEP)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "rflint", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_os_exit_in_forward_is_the_models_error_not_rflints_exit(project, jobs):
    # os._exit(0) in forward() ended rflint on the spot: exit 0, no report, and the CI gate passed
    # although deep.py has a tail
    (project / "quits.py").write_text(_model("os._exit(0)\n"))
    proc = _run("deep.py:build", "quits.py:Net", "--input", "8", "-f", "json", "-j", jobs, cwd=project)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2
    assert [m["target"] for m in doc["models"]] == ["deep.py:build"]
    assert [e["message"] for e in doc["errors"]] == ["quits.py:Net: its code called os._exit(0) while rflint traced or ran it"]


def test_output_of_the_models_code_below_python_does_not_reach_a_json_report(project):
    # print() was redirected, but a subprocess's output (or os.write(1, ...), a C extension's printf)
    # went to descriptor 1, into the JSON on stdout
    (project / "noisy.py").write_text("import os\nimport subprocess\nsubprocess.run(['echo', 'from a child'])\n"
                                      "os.write(1, b'straight to fd 1\\n')\n" + DEEP)
    proc = _run("noisy.py:build", "--input", "8", "-f", "json", cwd=project)
    assert [m["target"] for m in json.loads(proc.stdout)["models"]] == ["noisy.py:build"]
    assert "from a child" in proc.stderr and "straight to fd 1" in proc.stderr


PATCHES = {
    # a global wrapper of a torch function (the next target's pool was read as the patched one)
    "relu_is_a_pool.py": "import torch.nn.functional as F\nF.relu = lambda x, inplace=False: F.max_pool2d(x, 3, 1, 1)\n",
    # a class swapped in torch.nn (the next target's convs became the first target's class)
    "own_conv.py": "import torch.nn as nn\nclass MyConv(nn.Conv2d):\n    pass\nnn.Conv2d = MyConv\n",
    "recursion.py": "import sys\nsys.setrecursionlimit(60)\n",
}


CHAIN = textwrap.dedent("""
    import torch.nn as nn
    import torch.nn.functional as F


    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 3, padding=1)
            self.c = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            return self.c(F.relu(self.b(F.relu(self.a(x)))))
""")


def _layers(doc, target):
    return [[(layer["name"], layer["op"], layer["r_out_min"]) for layer in m["layers"]]
            for m in doc["models"] if m["target"] == target]


@pytest.mark.parametrize("patch", sorted(PATCHES))
def test_what_a_model_file_rebinds_does_not_reach_a_target_of_other_directories(project, patch):
    # The next target is a 3-conv chain with ReLUs: 3 RF layers, r 3, 5, 7; with F.relu a 3x3 pool
    # it read 5 RF layers, with nn.Conv2d = MyConv its convs were no Conv2d, with a recursion limit
    # of 60 it could not be traced.  (In a process of its own: a leak must not reach other tests.)
    (project / "other").mkdir()
    (project / "other" / patch).write_text(PATCHES[patch] + DEEP)
    (project / "chain.py").write_text(CHAIN)
    for order in ([f"other/{patch}:build", "chain.py:Chain"], ["chain.py:Chain", f"other/{patch}:build", "zoo:vgg11"]):
        proc = _run(*order, "--input", "32", "-f", "json", cwd=project)
        assert _layers(json.loads(proc.stdout), "chain.py:Chain") == [
            [("a", "Conv2d", [3, 3]), ("b", "Conv2d", [5, 5]), ("c", "Conv2d", [7, 7])]], order
    # nor a zoo model after it: VGG-11's first pool still reads its 2x2 window (r 3 -> 4)
    proc = _run(f"other/{patch}:build", "zoo:vgg11", "--input", "32", "-f", "json", cwd=project)
    assert _layers(json.loads(proc.stdout), "zoo:vgg11")[0][:2] == [("features.0", "Conv2d", [3, 3]),
                                                                    ("features.2", "MaxPool2d", [4, 4])]


def test_a_files_second_target_keeps_the_files_own_patch(project):
    # Two targets of one file share its module, imported once: the patch its import made is its
    # own, and was given back after the first target, so the second ran without it (with --jobs 2,
    # in a fresh worker, with it).  By hand: conv (r 3), then F.relu read as a 3x3 pool (r 5).
    (project / "patched.py").write_text(CHAIN + PATCHES["relu_is_a_pool.py"] + "\n\ndef build():\n    return Chain()\n")
    for jobs in ("1", "2"):
        proc = _run("patched.py:build", "patched.py:Chain", "--input", "32", "-f", "json", "-j", jobs, cwd=project)
        doc = json.loads(proc.stdout)
        for target in ("patched.py:build", "patched.py:Chain"):
            [layers] = _layers(doc, target)
            assert [op for _, op, _ in layers][:2] == ["Conv2d", "F.max_pool2d"], (jobs, target)


def test_a_worker_that_dies_takes_only_its_own_target(project):
    # the OOM killer (SIGKILL) in one worker broke the pool: "BrokenProcessPool", no report at all,
    # and no word of which model it was
    (project / "killed.py").write_text("import os\nimport signal\n\n\ndef build():\n"
                                       "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = _run("deep.py:build", "killed.py:build", "--input", "8", "--input", "16", "-f", "json", "-j", "2",
                cwd=project)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2
    assert [(m["target"], m["input"]) for m in doc["models"]] == [("deep.py:build", [8, 8]), ("deep.py:build", [16, 16])]
    assert [e["message"] for e in doc["errors"]] == [
        "killed.py:build: the worker process was killed by SIGKILL (out of memory?) while it analysed the model; "
        "the other targets were analysed"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_thread_the_model_leaves_running_does_not_keep_the_run_alive(project, jobs):
    # a non-daemon thread started by the factory (telemetry, a prefetcher): the report came, then the
    # process never exited (with --jobs not even the report came), and the CI step hung
    (project / "threads.py").write_text("import threading\nimport time\n" + DEEP.replace(
        "def build():\n", "def build():\n    threading.Thread(target=time.sleep, args=(3600,)).start()\n"))
    proc = _run("threads.py:build", "--input", "8", "--input", "16", "-j", jobs, "--no-layers", cwd=project, timeout=60)
    assert proc.returncode == 1 and "2 model runs: 1 error," in proc.stdout  # the tail at 8 px, none at 16


def test_the_report_may_not_replace_the_model(project):
    # -o deep.py wrote the report over the model's source
    before = (project / "deep.py").read_text()
    for flag in ("-o", "--html"):
        result = runner.invoke(app, ["check", "deep.py:build", "--input", "8", flag, "./deep.py"])
        assert result.exit_code == 2 and f"{flag} deep.py is the file of deep.py:build" in result.stderr
    result = runner.invoke(app, ["check", "deep:build", "--input", "8", "-o", "deep.py"])  # as a module
    assert result.exit_code == 2 and "-o deep.py is the file of deep:build" in result.stderr
    assert (project / "deep.py").read_text() == before
    assert os.path.exists(project / "deep.py")


API_SCRIPT = textwrap.dedent("""
    import json
    import torch.nn.functional as F
    import rflint

    def layers(target):
        return [layer.op for layer in rflint.analyze(target, 32).layers]

    before = F.relu
    first = layers("other/patcher.py:build")  # its module binds F.relu to a lambda of its own
    mine = lambda x, inplace=False: x  # the caller's own patch, made between two calls
    F.gelu = mine
    second = layers("chain.py:Chain")  # other directories: the patcher's F.relu goes, the caller's stays
    print(json.dumps({"first": first, "second": second, "relu_back": F.relu is before, "mine_kept": F.gelu is mine}))
""")


def test_the_python_api_gives_back_a_targets_rebinding_but_not_the_callers(project):
    # Under the API only rebindings to code of the forgotten directories go: a patch the caller made
    # between two calls is theirs.  By hand: patcher.py's conv (r 3) then F.relu read as a 3x3 pool
    (project / "other").mkdir()
    (project / "other" / "patcher.py").write_text(PATCHES["relu_is_a_pool.py"] + DEEP.replace("for i in range(6)", "for i in range(2)")
                                                  .replace("def build():\n    return nn.Sequential(",
                                                           "def build():\n    return nn.Sequential(nn.Conv2d(3, 3, 3), nn.ReLU(), "))
    (project / "chain.py").write_text(CHAIN)
    (project / "script.py").write_text(API_SCRIPT)
    proc = subprocess.run([sys.executable, "script.py"], cwd=project, capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["relu_back"] and out["mine_kept"]
    assert out["second"] == ["Conv2d", "Conv2d", "Conv2d"]


# A helper that patches F.gelu to take an alpha, and a model whose forward() needs that patch: a
# TypeError ("unexpected keyword argument 'alpha'") when the patch was taken from it
GELU_HELPER = textwrap.dedent("""
    import torch
    import torch.nn.functional as F

    if not getattr(torch, "_alpha_gelu", False):  # a guard, so that a second import patches nothing
        torch._alpha_gelu = True
        _plain = F.gelu

        def gelu(x, approximate="none", alpha=1.0):
            return _plain(x, approximate=approximate) * alpha

        F.gelu = gelu
""")
NEEDS_GELU = textwrap.dedent("""
    import sys
    import os
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
    import helper  # noqa: E402,F401  (patches F.gelu)
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return F.gelu(self.c(x), alpha=2.0)


    def build():
        return Net()
""")


@pytest.mark.parametrize("helper_in", ["common", "cwd"])
def test_a_shared_helpers_patch_reaches_every_target_that_imports_it(project, helper_in):
    # Targets of two directories import one helper.  From ../common (its own sys.path entry) the
    # helper stays loaded after the first target, so its patch must stay; from the working directory
    # it is forgotten and imported again, and its guard flag (an added name) must go with its patch,
    # or the import patches nothing.  Either way the second target ran without the patch under
    # -j 1 (TypeError, exit 2) and with it under -j 2.
    for sub in ("da", "db", "common"):
        (project / sub).mkdir()
    (project / ("common" if helper_in == "common" else ".") / "helper.py").write_text(GELU_HELPER)
    for sub in ("da", "db"):
        (project / sub / "m.py").write_text(NEEDS_GELU)
    for jobs in ("1", "2"):
        proc = _run("da/m.py:build", "db/m.py:build", "--input", "32", "-f", "json", "--fail-on", "never",
                    "-j", jobs, cwd=project)
        assert proc.returncode == 0 and json.loads(proc.stdout)["errors"] == [], (jobs, proc.stdout[-300:])


def test_a_patched_layer_class_does_not_reach_the_next_model(project):
    # nn.Conv2d.__init__ patched to stride 1 (class attributes were not looked at): the next model,
    # ResNet-18, lost its downsampling and with it every finding at 32 px; alone it has RF002 (spec §6)
    (project / "other").mkdir()
    (project / "other" / "m.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        _init = nn.Conv2d.__init__


        def init(self, *args, **kwargs):
            _init(self, *args, **kwargs)
            self.stride = (1, 1)


        nn.Conv2d.__init__ = init


        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1))
    """))
    proc = _run("other/m.py:build", "zoo:resnet18", "--input", "32", "-f", "json", "--fail-on", "never", cwd=project)
    [resnet] = [m for m in json.loads(proc.stdout)["models"] if m["target"] == "zoo:resnet18"]
    assert "RF002" in {f["code"] for f in resnet["findings"]}


def test_a_factory_that_analyses_another_model_keeps_its_own_patch(project):
    # rflint.analyze("zoo:resnet18") inside a factory took the outer model's F.gelu patch away
    (project / "common").mkdir()
    (project / "common" / "helper.py").write_text(GELU_HELPER)
    (project / "outer").mkdir()
    (project / "outer" / "m.py").write_text(NEEDS_GELU.replace(
        "def build():\n    return Net()", "def build():\n    import rflint\n    rflint.analyze('zoo:resnet18', 32)\n    return Net()"))
    proc = _run("outer/m.py:build", "--input", "32", "-f", "json", "--fail-on", "never", cwd=project)
    assert proc.returncode == 0 and json.loads(proc.stdout)["errors"] == []


@pytest.mark.parametrize("closed, jobs", [((2,), "1"), ((2,), "2"), ((1, 2), "2")])
def test_closed_standard_descriptors_keep_the_report_clean_and_the_run_finite(project, closed, jobs):
    # With 2>&- the saved copy of stdout took descriptor 2, so the model's os.write(2, ...) went into
    # the JSON; under --jobs a worker's "stdout" and "stderr" were the pool's pipes (EBADF, a hang)
    (project / "talk.py").write_text("import os\nos.write(1, b'one\\n')\nos.write(2, b'two\\n')\n" + DEEP)
    out = project / "report.json"

    def close():
        for fd in closed:
            os.close(fd)

    proc = subprocess.run([sys.executable, "-m", "rflint", "talk.py:build", "deep.py:build", "--input", "8",
                           "-f", "json", "-j", jobs, *([] if closed == (2,) else ["-o", str(out)])],
                          cwd=project, stdout=subprocess.PIPE, text=True, preexec_fn=close, timeout=120)
    doc = json.loads(out.read_text() if closed != (2,) else proc.stdout)
    assert proc.returncode == 1 and [m["target"] for m in doc["models"]] == ["talk.py:build", "deep.py:build"]


def test_an_exception_of_the_models_own_that_derives_from_base_exception_is_its_error(project):
    # a `class Stop(BaseException)` raised by forward() escaped: a traceback with the findings' exit
    # code under -j 1, a worker "killed by SIGTERM" under -j 2
    (project / "stops.py").write_text(_model("class Stop(BaseException):\n    pass\nraise Stop('custom')\n"))
    for jobs in ("1", "2"):
        proc = _run("stops.py:Net", "deep.py:build", "--input", "8", "-f", "json", "-j", jobs, cwd=project)
        doc = json.loads(proc.stdout)
        assert proc.returncode == 2 and [m["target"] for m in doc["models"]] == ["deep.py:build"], jobs
        assert [(e["target"], e["message"]) for e in doc["errors"]] == [("stops.py:Net", "Stop: custom")], jobs


def test_a_sweep_of_a_model_that_exits_still_writes_its_json(project):
    # sys.exit() in forward(): sweep -f json printed nothing, and the message did not name the model
    (project / "quits.py").write_text(_model("import sys\nsys.exit(3)\n"))
    proc = _run("sweep", "quits.py:Net", "--sizes", "8,16", "-f", "json", cwd=project)
    doc = json.loads(proc.stdout)
    message = "quits.py:Net: its code called sys.exit(3) while rflint traced or ran it"
    assert proc.returncode == 2 and doc["sizes"] == [] and doc["error"] == message and message in proc.stderr


def test_a_models_exit_handler_does_not_set_rflints_exit_code(project):
    # atexit.register(lambda: os._exit(0)) in a model file: the run with deep.py's predicted tail
    # exited 0, and the CI gate passed
    (project / "handler.py").write_text("import atexit\nimport os\natexit.register(lambda: os._exit(0))\n" + DEEP)
    proc = _run("handler.py:build", "deep.py:build", "--input", "8", "--no-layers", cwd=project)
    assert proc.returncode == 1 and "2 model runs: 2 errors" in proc.stdout


def test_a_factory_that_analyses_a_model_file_keeps_its_own_modules(project):
    # a nested rflint.analyze of a file target forgot the outer model's modules and took its
    # directory off sys.path: the factory's next import failed (ModuleNotFoundError)
    (project / "outer").mkdir()
    (project / "outer" / "late.py").write_text("WIDTH = 8\n")
    (project / "outer" / "m.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        def build():
            import rflint
            rflint.analyze("deep.py:build", 8)
            from late import WIDTH
            return nn.Sequential(nn.Conv2d(3, WIDTH, 3, padding=1))
    """))
    proc = _run("outer/m.py:build", "--input", "8", "-f", "json", cwd=project)
    assert proc.returncode == 0 and json.loads(proc.stdout)["errors"] == []


def test_a_name_a_staying_helper_added_to_torch_stays(project):
    # A helper on its own sys.path entry stays loaded, and so does its patch; the state it added
    # to torch (read by the patch when called) was deleted all the same: AttributeError under -j 1
    for sub in ("da", "db", "common"):
        (project / sub).mkdir()
    (project / "common" / "helper.py").write_text(GELU_HELPER.replace(
        "return _plain(x, approximate=approximate) * alpha", "return _plain(x, approximate=approximate) * alpha * torch._scale")
        .replace("torch._alpha_gelu = True", "torch._alpha_gelu = True\n    torch._scale = 1.0"))
    for sub in ("da", "db"):
        (project / sub / "m.py").write_text(NEEDS_GELU)
    proc = _run("da/m.py:build", "db/m.py:build", "--input", "32", "-f", "json", "--fail-on", "never", cwd=project)
    assert proc.returncode == 0 and json.loads(proc.stdout)["errors"] == []


FORKS = textwrap.dedent("""
    import multiprocessing

    import torch.nn as nn


    def _nothing():
        pass


    def _fork_a_child():
        child = multiprocessing.get_context("fork").Process(target=_nothing)
        child.start()
        child.join()
        assert child.exitcode == 0, f"the child ended with {child.exitcode}"


    _fork_a_child()  # at import, as a module that warms up a pool of workers


    def build():
        _fork_a_child()  # and in the factory, while the CLI's job refuses os._exit
        return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(6)])
""")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_child_the_models_code_forks_ends_as_its_own_process(project, jobs):
    # multiprocessing's child ends with os._exit(); refused there too, it raised out of
    # Process.start() into the model's import and went on as a second rflint: two reports on
    # stdout, and the parent's join() saw exit 2 (torch 2.1's inductor forks its compile workers
    # at import like this)
    (project / "forks.py").write_text(FORKS)
    proc = _run("forks.py:build", "--input", "8", "-f", "json", "-j", jobs, cwd=project)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr
    assert [m["target"] for m in doc["models"]] == ["forks.py:build"] and doc["errors"] == []
    assert sorted(f["code"] for f in doc["models"][0]["findings"]) == ["RF001", "RF001", "RF002"]
