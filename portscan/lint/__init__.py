"""Findings from signatures/ data, per component and target: lint reads the facts that
inspect found and the graph, and extracts none itself (DESIGN: "lint")."""
