"""Tools a turn can run: one module per family (memory, search), registered by name.

A server tool is a function of (its environment, its arguments) → its result; the effects it
has (a memory edit) are events it records on the aggregates the environment holds, saved with
the step. ``ToolBox`` is one turn's tool set: the agent's tools, then the request's client
tools, which the client runs itself and which replace a server tool of the same name.
"""
