"""Run execution: UserExecutionContext, RunState and its state machine, RunManager, ToolDispatcher, event emission."""
