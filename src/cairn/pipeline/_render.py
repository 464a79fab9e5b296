"""Drawings of the stage graph: ASCII boxes (like `dvc dag`), Mermaid, Graphviz dot."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

Edge = tuple[str, str]  # (producer, consumer)

_HGAP = 4  # columns between boxes of one layer


def _layers(names: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Each stage one layer below its lowest producer (names come producers first)."""
    parents: dict[str, list[str]] = {n: [] for n in names}
    for src, dst in edges:
        parents[dst].append(src)
    depth: dict[str, int] = {}
    for name in names:
        depth[name] = max((depth[p] + 1 for p in parents[name]), default=0)
    return depth


def _routes(names: Sequence[str], edges: Sequence[Edge], depth: dict[str, int]
            ) -> tuple[list[list[str]], list[list[str]]]:
    """Layers of nodes, an edge across several layers passing through one waypoint
    ("" + a number) per layer between, so it goes around boxes rather than through."""
    layers: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for name in names:
        layers[depth[name]].append(name)
    routes = []
    for i, (src, dst) in enumerate(edges):
        route = [src]
        for layer in range(depth[src] + 1, depth[dst]):
            waypoint = f"\0{i}.{layer}"
            layers[layer].append(waypoint)
            route.append(waypoint)
        routes.append([*route, dst])
    return layers, routes


def _order(layers: list[list[str]], routes: list[list[str]]) -> None:
    """Fewer crossings: each node moved towards the mean position of its neighbours in
    the layer above (then below), a few sweeps (the barycenter heuristic)."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for route in routes:
        for a, b in itertools.pairwise(route):
            up.setdefault(b, []).append(a)
            down.setdefault(a, []).append(b)
    for sweep in range(4):
        neighbours, rows = (up, layers[1:]) if sweep % 2 == 0 else (down, layers[-2::-1])
        for row in rows:
            position = {n: i for layer in layers for i, n in enumerate(layer)}
            row.sort(key=lambda n: (sum(position[m] for m in neighbours.get(n, [n]))
                                    / len(neighbours.get(n, [n])) if n in neighbours
                                    else position[n]))


def ascii_dag(names: Sequence[str], edges: Sequence[Edge]) -> str:
    """Each connected part of the graph drawn on its own, one below the other (as
    `dvc dag` does), so unrelated stages do not make one very wide drawing."""
    return "\n".join(_ascii_part(part, [e for e in edges if e[0] in part])
                     for part in _connected_parts(names, edges))


def _connected_parts(names: Sequence[str], edges: Sequence[Edge]) -> list[list[str]]:
    part_of = {n: n for n in names}  # union-find

    def find(n: str) -> str:
        while part_of[n] != n:
            part_of[n] = part_of[part_of[n]]
            n = part_of[n]
        return n

    for a, b in edges:
        part_of[find(a)] = find(b)
    parts: dict[str, list[str]] = {}
    for name in names:
        parts.setdefault(find(name), []).append(name)
    return list(parts.values())


def _ascii_part(names: Sequence[str], edges: Sequence[Edge]) -> str:
    """Boxes in layers top to bottom, edges drawn with ``*`` from a producer's bottom to
    a consumer's top."""
    depth = _layers(names, edges)
    layers, routes = _routes(names, edges, depth)
    _order(layers, routes)
    widths = {n: len(n) + 4 for n in names}
    row_widths = [sum(widths.get(n, 1) + _HGAP for n in layer) - _HGAP for layer in layers]
    total = max(row_widths)
    centre: dict[str, int] = {}
    for layer, row_width in zip(layers, row_widths, strict=True):
        x = (total - row_width) // 2
        for name in layer:
            centre[name] = x + widths.get(name, 1) // 2
            x += widths.get(name, 1) + _HGAP
    top, y = {}, 0
    for i, layer in enumerate(layers):
        top.update(dict.fromkeys(layer, y))
        nxt = set(layers[i + 1]) if i + 1 < len(layers) else set()
        spread = max((abs(centre[a] - centre[b]) for r in routes for a, b in itertools.pairwise(r)
                      if a in layer and b in nxt), default=0)
        y += 3 + min(max(3, spread // 4 + 1), 8)
    canvas = [[" "] * total for _ in range(y)]
    for route in routes:
        for a, b in itertools.pairwise(route):
            _line(canvas, centre[a], top[a] + 3, centre[b], top[b] - 1)
        for waypoint in route[1:-1]:
            _line(canvas, centre[waypoint], top[waypoint], centre[waypoint], top[waypoint] + 2)
    for name in names:
        _box(canvas, name, centre[name] - widths[name] // 2, top[name])
    lines = ["".join(row).rstrip() for row in canvas]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _line(canvas: list[list[str]], x0: int, y0: int, x1: int, y1: int) -> None:
    previous = x0
    for y in range(y0, y1 + 1):
        x = x0 if y1 == y0 else round(x0 + (x1 - x0) * (y - y0) / (y1 - y0))
        step = 1 if x >= previous else -1
        # a step sideways of more than one column is filled so the line stays connected
        start = previous + step if abs(x - previous) > 1 else x
        for col in range(start, x + step, step):
            canvas[y][col] = "*"
        previous = x


def _box(canvas: list[list[str]], name: str, x: int, y: int) -> None:
    border = "+" + "-" * (len(name) + 2) + "+"
    for dy, text in enumerate((border, f"| {name} |", border)):
        canvas[y + dy][x:x + len(text)] = list(text)


def mermaid(names: Sequence[str], edges: Sequence[Edge]) -> str:
    ids = {name: f"node{i}" for i, name in enumerate(names, 1)}
    lines = ["flowchart TD"]
    lines += [f'\t{ids[n]}["{n.replace(chr(34), "#quot;")}"]' for n in names]
    lines += [f"\t{ids[a]}-->{ids[b]}" for a, b in edges]
    return "\n".join(lines)


def dot(names: Sequence[str], edges: Sequence[Edge]) -> str:
    def quote(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["strict digraph {"]
    lines += [f"{quote(n)};" for n in names]
    lines += [f"{quote(a)} -> {quote(b)};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines)
