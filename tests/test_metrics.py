"""Pod usage from the kubelet Summary API, without a cluster (metrics.py).

SUMMARY is a document recorded from the local cluster's kubelet (GET /stats/summary,
v1.34.4, containerd 1.6), trimmed to the fields read here. The pod "starting" is the
recorded pod edited to look like a container in its first seconds: the kubelet then
reports CPU time but no rate (usageNanoCores) yet.
"""

import copy

import pytest

from shipcheck import metrics

NAMESPACE = "shipcheck-clustertest-d9ecb9"

SUMMARY = {
    "node": {"nodeName": "127.0.0.1", "startTime": "2026-11-26T08:06:12Z"},
    "pods": [
        {
            "podRef": {"name": "sample", "namespace": NAMESPACE, "uid": "8f18ae2d-ea9d-49bb-8da2-78a0a98ae817"},
            "startTime": "2026-11-26T08:23:54Z",
            "containers": [{
                "name": "main",
                "startTime": "2026-11-26T08:23:55Z",
                "cpu": {"time": "2026-11-26T08:23:56Z", "usageNanoCores": 59395589,
                        "usageCoreNanoSeconds": 110961680},
                "memory": {"time": "2026-11-26T08:23:56Z", "usageBytes": 7348224, "workingSetBytes": 7344128,
                           "rssBytes": 6635520},
            }],
            "cpu": {"time": "2026-11-26T08:23:56Z", "usageNanoCores": 59395589},
            "memory": {"time": "2026-11-26T08:23:56Z", "workingSetBytes": 7344128},
        },
        {
            "podRef": {"name": "coredns-b58496497-bkrrf", "namespace": "kube-system",
                       "uid": "ea0b62b1-2885-4d0e-8893-96dcfb6a2b74"},
            "containers": [{
                "name": "coredns",
                "cpu": {"time": "2026-11-26T08:23:56Z", "usageNanoCores": 8893698,
                        "usageCoreNanoSeconds": 1207984259},
                "memory": {"time": "2026-11-26T08:23:56Z", "workingSetBytes": 17825792},
            }],
        },
        {
            "podRef": {"name": "starting", "namespace": NAMESPACE, "uid": "0c6d1c1e-0000-4000-8000-000000000001"},
            "containers": [{
                "name": "main",
                "cpu": {"time": "2026-11-26T08:23:56Z", "usageCoreNanoSeconds": 110961680},
                "memory": {"time": "2026-11-26T08:23:56Z", "usageBytes": 7348224, "workingSetBytes": 7344128},
            }],
        },
    ],
}

def test_usage_per_pod_and_container_in_millicores_and_working_set_bytes():
    usage = metrics.pod_usage(SUMMARY, NAMESPACE)
    assert usage["sample"] == {"main": {"cpu_millicores": pytest.approx(59.395589), "memory_bytes": 7344128}}
    assert isinstance(usage["sample"]["main"]["memory_bytes"], int)


def test_only_the_namespace_asked_for():
    assert set(metrics.pod_usage(SUMMARY, NAMESPACE)) == {"sample", "starting"}
    assert set(metrics.pod_usage(SUMMARY, "kube-system")) == {"coredns-b58496497-bkrrf"}
    assert metrics.pod_usage(SUMMARY, "todo") == {}


def test_a_container_without_a_cpu_rate_yet_is_left_out():
    usage = metrics.pod_usage(SUMMARY, NAMESPACE)
    assert usage["starting"] == {}
    assert not metrics.is_sampled(usage, "starting", ["main"])
    assert metrics.is_sampled(usage, "sample", ["main"])


def test_a_container_without_memory_is_left_out_too():
    summary = copy.deepcopy(SUMMARY)
    del summary["pods"][0]["containers"][0]["memory"]
    assert metrics.pod_usage(summary, NAMESPACE)["sample"] == {}


def test_sampled_needs_every_container_and_at_least_one():
    usage = {"web": {"app": {"cpu_millicores": 1.0, "memory_bytes": 1}}}
    assert metrics.is_sampled(usage, "web", ["app"])
    assert not metrics.is_sampled(usage, "web", ["app", "sidecar"])
    assert not metrics.is_sampled(usage, "web", [])
    assert not metrics.is_sampled(usage, "other", ["app"])


def test_an_empty_or_partial_summary_reads_as_no_usage():
    assert metrics.pod_usage({}, NAMESPACE) == {}
    assert metrics.pod_usage({"pods": [{"podRef": {"name": "p", "namespace": NAMESPACE}}]}, NAMESPACE) == {"p": {}}


