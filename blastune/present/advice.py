"""The advice in words: ``blastune recommend``'s explanation and ``blastune profile show``'s
table (what the profile holds and which entry ``env --auto`` uses)."""

from __future__ import annotations

from blastune.present.tables import fit_table

# notices about the profile (advise.recommend.update_profile), folded into the one profile line
_PROFILE_NOTICES = (
    "not saved in the profile",
    "profile entry for ",
    "profile not saved",
    "kept the clean entry",
)


def _profile_line(rec) -> str | None:
    """One sentence on what the profile now holds from this run (and what it did not take)."""
    if rec.profile and rec.profile_saved:
        what = ", ".join(
            f"{j} job(s) -> {rec.profile_entries[str(j)]['threads']} thread(s)"
            for j in rec.profile_saved
        )
        return f"profile: saved {what} in {rec.profile}"
    if (
        rec.profile_entries
        and rec.same_machine
        and not any(n.startswith(_PROFILE_NOTICES) for n in rec.notices)
    ):
        return "profile: nothing saved"
    return None


def render_recommendation(rec) -> str:
    """The explanation, for stderr; the exports themselves go to stdout alone."""
    if rec.jobs is None:
        head = f"Best layout: {rec.layout}"
    else:
        head = f"For {rec.jobs} concurrent job(s): {rec.layout}"
    out = [head, f"BLAS threads per job: {rec.threads}", "", "Why:"]
    out += [f"  - {line}" for line in rec.rationale]
    out += ["", f"In Python: {rec.python}", "", f"measured by: {rec.source}"]
    line = _profile_line(rec)
    if line:
        out.append(line)
    profile_notes = [n for n in rec.notices if n.startswith(_PROFILE_NOTICES)]
    out += [f"notice: {n}" for n in rec.notices if n not in profile_notes]
    # "profile: ..." once: the notices' own words start with "profile" or say "in the profile"
    out += [
        "profile: "
        + n.replace("not saved in the profile, ", "not saved, ", 1).removeprefix("profile ")
        for n in profile_notes
    ]
    if rec.noisy:
        out.insert(0, "NOISY (--accept-noisy): " + "; ".join(rec.noisy))
    evaluable = rec.shell not in ("json", "docker", "dotenv")
    hint = ': eval "$(blastune recommend ...)" applies them' if evaluable else ""
    out += ["", f"exports ({rec.shell}) on stdout{hint}"]
    return "\n".join(out)


def render_profile(report, wide: bool = False) -> str:
    """``blastune profile show``: the entries, which one ``env --auto`` uses, the noisy ones."""
    if report.profile is None:
        out = [
            f"no saved profile for this machine and BLAS ({report.path})",
            "`blastune recommend` (or `blastune jobs`) measures and saves one.",
        ]
        return "\n".join(out + [f"notice: {n}" for n in report.notices])
    rows = []
    for w, e in report.profile.entries():
        used = "*" if report.auto.get(e.jobs) == w.key else ""
        rows.append(
            [
                w.label,
                e.jobs,
                f"{e.threads}{used}",
                e.layout,
                e.measured.replace("T", " ").removesuffix("+00:00"),
                "noisy" if e.noisy else ("extrapolated" if e.extrapolated else "clean"),
            ]
        )
    out = [
        f"profile: {report.path}",
        fit_table(
            rows,
            ["workload", "jobs", "threads", "layout", "measured (UTC)", "data"],
            wide=wide,
        ),
        "*: the entry `blastune env --auto --jobs N` uses (clean before noisy, then the newest)",
    ]
    noisy = [(w, e) for w, e in report.profile.entries() if e.noisy]
    out += [f"noisy: {w.label}, {e.jobs} job(s): {e.noisy}" for w, e in noisy]
    return "\n".join(out + [f"notice: {n}" for n in report.notices])
