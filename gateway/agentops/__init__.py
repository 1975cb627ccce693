"""The AgentOps loop over the traffic the gateway already carries: workflow versions of each agent
(fingerprints of what defines its behaviour), evaluation gates (`agentgw eval run`), online evaluation
by a judge model, anomaly alerts against per-agent baselines, and a report for people.

    config.py       the `agentops:` section
    fingerprint.py  a call's parts and its version id          versions.py  the version, on the request path
    registry.py     versions as first seen: ledger, log, metric, webhook      alerts.py  the webhook
    judge.py        LLM-as-judge requests and replies           online.py    sampled production calls judged
    anomaly.py      EWMA baselines, pure                        watch.py     the series read from the ledger
    checks.py, cases.py, evals.py, junit.py, eval_cli.py         `agentgw eval run`
    insights.py     versions and eval results for /v1/agents    report.py, report_cli.py  `agentgw report`
"""
