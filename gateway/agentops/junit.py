"""An eval run as JUnit XML, the report format CI systems read (GitHub Actions, GitLab, Jenkins): a test
suite per variant (candidate, baseline) with a test case per eval case, and a suite of the gates."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET  # builds a document; parses nothing

from gateway.agentops.evals import Run, Variant


def document(run: Run) -> bytes:
    suites = ET.Element("testsuites", name=f"agentgw eval {run.run_id}")
    total = failed = 0
    for variant in (run.candidate, run.baseline):
        if variant is not None:
            suite = _variant(variant)
            suites.append(suite)
            total += variant.cases
            failed += variant.cases - variant.passed_cases - variant.errors
    gates = ET.SubElement(suites, "testsuite", name="gates", tests=str(len(run.gates)))
    gates.set("failures", str(sum(not ok for _, _, ok in run.gates)))
    for gate, value, ok in run.gates:
        case = ET.SubElement(gates, "testcase", classname="agentgw.eval.gates", name=gate.text)
        if not ok:
            shown = "not measured" if value is None else f"{value:g}"
            ET.SubElement(case, "failure", message=f"{gate.text}: {shown}", type="gate")
    suites.set("tests", str(total + len(run.gates)))
    suites.set("failures", str(failed + sum(not ok for _, _, ok in run.gates)))
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def _variant(variant: Variant) -> ET.Element:
    suite = ET.Element("testsuite", name=f"{variant.variant}: {variant.model}", tests=str(variant.cases))
    suite.set("failures", str(variant.cases - variant.passed_cases - variant.errors))
    suite.set("errors", str(variant.errors))
    suite.set("time", f"{sum(r.latency_ms or 0 for r in variant.results) / 1000:.3f}")
    properties = ET.SubElement(suite, "properties")
    facts = {"model": variant.model, "agent_version": variant.agent_version or "",
             "pass_rate": f"{variant.pass_rate:.4f}", "cost_usd": f"{variant.cost_usd:.9f}"}  # fmt: skip
    for name, value in facts.items():
        ET.SubElement(properties, "property", name=name, value=value)
    for result in variant.results:
        case = ET.SubElement(suite, "testcase", classname=f"agentgw.eval.{variant.variant}", name=result.case_id)
        case.set("time", f"{(result.latency_ms or 0) / 1000:.3f}")
        if result.error is not None:
            ET.SubElement(case, "error", message=result.error[:500], type="call")
        elif not result.passed:
            failing = [c for c in result.checks if not c.passed]
            message = "; ".join(f"{c.check}: {c.detail}" if c.detail else c.check for c in failing)
            failure = ET.SubElement(case, "failure", message=message[:500], type="check")
            failure.text = f"answer: {result.answer[:1000]}"
    return suite


def write(run: Run, path: str | Path) -> None:
    Path(path).write_bytes(document(run))
