"""tallyctl, the operator's tool, talks to the mesh like any peer."""

import os
import subprocess

from tally import binary, free_port


def tallyctl(*args, mesh):
    env = dict(os.environ, TALLY_MESH=mesh)
    return subprocess.run([binary("tallyctl"), *args], capture_output=True, text=True,
                          timeout=30, env=env)


def test_tallyctl_status_lists_the_gateway_services_and_instances(system):
    gw = system.gw
    out = tallyctl("status", mesh=gw.mesh)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"gateway {gw.name} at {gw.mesh}" in text
    lines = text.splitlines()
    testsvc = [line for line in lines if line.strip().startswith("service testsvc")]
    assert testsvc and "instances 2" in testsvc[0], text
    instance_lines = [line.strip() for line in lines if line.startswith("    ")]
    names = {line.split()[0] for line in instance_lines}
    assert {"testsvc2", "testsvc3"} <= names, text      # the system fixture's instances
    assert any(line.strip().startswith("service auth") for line in lines)
    assert all("db ok" in line for line in instance_lines), text


def test_tallyctl_ping_answers_pong(system):
    out = tallyctl("ping", mesh=system.gw.mesh)
    assert out.returncode == 0, out.stderr
    assert "pong" in out.stdout


def test_tallyctl_status_fails_for_a_gateway_that_does_not_answer(system):
    dead = f"tcp://127.0.0.1:{free_port()}"
    out = tallyctl("status", mesh=f"{system.gw.mesh},{dead}")
    assert out.returncode == 1
    assert f"gateway {dead}: not answering" in out.stdout
    assert f"gateway {system.gw.name} at" in out.stdout
