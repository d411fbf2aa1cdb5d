"""The monthly indicators drawn as PNG pictures for the coordinators' mail (matplotlib;
the same figures as the workbook's own charts, which mail clients cannot show)."""

from __future__ import annotations

import io


def _bar_chart(title: str, labels: list[str], series: dict[str, list[float]],
               ylabel: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no screen on a server
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        positions = [x + index * width - 0.4 + width / 2 for x in range(len(labels))]
        bars = axes.bar(positions, values, width, label=name)
        axes.bar_label(bars, fmt="%g")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if len(series) > 1:
        axes.legend()
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def monthly_charts(month) -> dict[str, bytes]:
    """{file name: PNG} for a daemon.reports.workbooks.MonthlyIndicators."""
    charts = {}
    categories = sorted(month.categories.items())
    if categories:
        charts["categorias.png"] = _bar_chart(
            "Consultas recibidas por categoría", [name for name, _ in categories],
            {"Consultas": [count for _, count in categories]}, "Consultas")
    levels = list(month.levels.items())
    charts["niveles.png"] = _bar_chart(
        "Consultas recibidas y resueltas por nivel", [name for name, _ in levels],
        {"Recibidas": [v["received"] for _, v in levels],
         "Resueltas": [v["resolved"] for _, v in levels]}, "Consultas")
    incidents = month.incidents
    if incidents.total:
        charts["incidencias.png"] = _bar_chart(
            "Incidencias del mes por resultado",
            ["Segundo nivel", "Tercer nivel", "Req. funcional", "En proceso"],
            {"Incidencias": [incidents.resolved_level_2, incidents.resolved_level_3,
                             incidents.functional_requirements, incidents.in_process]},
            "Incidencias")
    if month.satisfaction:
        names = sorted(month.satisfaction)
        charts["satisfaccion.png"] = _bar_chart(
            "Satisfacción por categoría (1 a 5)", names,
            {"Puntaje promedio": [month.satisfaction[name] for name in names]}, "Puntaje")
    return charts
