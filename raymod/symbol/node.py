"""Graph nodes and the traversal every symbol query is built on."""


class Node:
    """One vertex: a variable (`op is None`) or an operator applied to input entries.

    `inputs` is a list of (Node, output_index) entries; `attrs` holds the
    node's string attributes as MXNet stores them (op parameters and
    `__key__` meta attributes).
    """

    __slots__ = ("op", "name", "attrs", "inputs")

    def __init__(self, op, name, attrs=None, inputs=()):
        self.op = op
        self.name = name
        self.attrs = dict(attrs or {})
        self.inputs = list(inputs)

    @property
    def is_variable(self):
        return self.op is None

    @property
    def num_outputs(self):
        return 1 if self.op is None else self.op.num_outputs

    def output_names(self):
        if self.op is None:
            return [self.name]
        return [f"{self.name}_{o}" for o in self.op.list_outputs()]

    def aux_input_slots(self):
        """Input positions this op mutates (its auxiliary states)."""
        if self.op is None:
            return ()
        n_args = len(self.op.list_arguments())
        return range(n_args, n_args + len(self.op.list_auxiliary_states()))

    def __repr__(self):
        return f"Node({self.op.op_name if self.op else 'null'}, {self.name!r})"


def topo_order(heads):
    """Nodes reachable from `heads` in depth-first post-order (MXNet's JSON order)."""
    order, seen = [], set()
    for node, _ in heads:
        stack = [(node, iter(node.inputs))]
        if id(node) in seen:
            continue
        seen.add(id(node))
        while stack:
            current, it = stack[-1]
            for child, _ in it:
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(current)
    return order


def copy_graph(heads):
    """The same graph with fresh Node objects (operators are immutable and shared)."""
    clones = {}
    for node in topo_order(heads):
        clones[id(node)] = Node(node.op, node.name, node.attrs,
                                [(clones[id(src)], i) for src, i in node.inputs])
    return [(clones[id(node)], i) for node, i in heads]


def aux_variable_ids(order):
    """ids of variables that some op mutates (fed to an auxiliary input slot)."""
    aux = set()
    for node in order:
        for slot in node.aux_input_slots():
            src, _ = node.inputs[slot]
            if src.is_variable:
                aux.add(id(src))
    return aux
