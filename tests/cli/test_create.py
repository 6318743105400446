"""``create job``: from a CronJob's template (``--from=cronjob/NAME``) or from an image."""

from __future__ import annotations

from controllers.api import Clientset
from controllers.api.objects import Obj
from runtime.cli.create import INSTANTIATE_ANNOTATION

from .conftest import Env
from .samples import deployment


def cronjob() -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "default"},
            "spec": {"schedule": "0 3 * * *",
                     "jobTemplate": {
                         "metadata": {"labels": {"team": "data"},
                                      "annotations": {"owner": "ops"}},
                         "spec": {"backoffLimit": 2,
                                  "template": {"spec": {
                                      "restartPolicy": "OnFailure",
                                      "containers": [{"name": "c", "image": "busybox"}]}}}}}}


def _seed(env: Env) -> Obj:
    async def go(api: Clientset) -> Obj:
        await api.resource("deploy").create(deployment("web"))
        return await api.resource("cronjobs").create(cronjob())
    return env.run(go)


def _job(env: Env, name: str) -> Obj:
    return env.run(lambda api: api.resource("jobs").get(name, "default"))


def test_create_job_from_cronjob(env: Env) -> None:
    cj = _seed(env)
    r = env.invoke("create", "job", "by-hand", "--from=cronjob/nightly")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "job.batch/by-hand created\n", "")
    job = _job(env, "by-hand")
    m = job["metadata"]
    assert m["annotations"] == {INSTANTIATE_ANNOTATION: "manual", "owner": "ops"}
    assert m["labels"] == {"team": "data"}
    assert m["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob",
                                     "name": "nightly", "uid": cj["metadata"]["uid"],
                                     "controller": True, "blockOwnerDeletion": False}]
    spec = job["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    # The api gave the Job its own selector and pod labels.
    uid = m["uid"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"]["job-name"] == "by-hand"
    # Short kind names work too; a second Job of the same name is refused.
    r = env.invoke("create", "job", "again", "--from", "cj/nightly", "-n", "default")
    assert (r.exit_code, r.stdout) == (0, "job.batch/again created\n")
    r = env.invoke("create", "job", "by-hand", "--from=cronjob/nightly")
    assert r.exit_code == 1 and "(AlreadyExists)" in r.stderr


def test_create_job_from_errors(env: Env) -> None:
    _seed(env)
    r = env.invoke("create", "job", "x", "--from=cronjob/missing")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error from server (NotFound):") and "missing" in r.stderr
    r = env.invoke("create", "job", "x", "--from=deploy/web")
    assert r.exit_code == 1
    assert r.stderr == "error: from must be an existing cronjob: deployments.apps\n"
    r = env.invoke("create", "job", "x", "--from=nightly")
    assert r.exit_code == 1 and "resource/name form" in r.stderr
    r = env.invoke("create", "job", "x")
    assert r.exit_code == 1
    assert r.stderr == "error: exactly one of --from or --image is required\n"
    r = env.invoke("create", "job", "x", "--from=cronjob/nightly", "--image=busybox")
    assert r.exit_code == 1 and "exactly one of" in r.stderr
    r = env.invoke("create", "job", "x", "--from=cronjob/nightly", "--", "echo")
    assert (r.exit_code, r.stderr) == (1, "error: cannot specify --from and command\n")


def test_create_job_from_image(env: Env) -> None:
    r = env.invoke("create", "job", "once", "--image=busybox", "--", "echo", "hi")
    assert (r.exit_code, r.stdout) == (0, "job.batch/once created\n")
    spec = _job(env, "once")["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0] == {**spec["containers"][0], "name": "once",
                                     "image": "busybox", "command": ["echo", "hi"]}
