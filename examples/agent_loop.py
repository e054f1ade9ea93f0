"""An agent loop against a local LLMSafeSpace, with a scripted offline "model".

The model below stands in for an LLM: it answers each conversation with the next tool
call of a fixed plan (in the OpenAI chat-completions shape), then a final message. Swap
`ScriptedModel.complete` for a real client call and the loop stays the same.

    source .llmsafespace/env && python examples/agent_loop.py
"""

import json
from typing import Any

from llmsafespace.sdk import Sandbox, SandboxTools

PLAN: list[tuple[str, dict[str, Any]]] = [
    ("run_code", {"code": "import statistics\ndata = [3, 1, 4, 1, 5, 9, 2, 6]"}),
    ("run_code", {"code": "statistics.mean(data), statistics.median(data)"}),
    ("write_file", {"path": "total.py", "content": "print(sum(range(10)))\n"}),
    ("run_command", {"command": "python3 total.py > total.txt"}),
    ("read_file", {"path": "total.txt"}),
]


class ScriptedModel:
    """Replays PLAN as tool calls, then summarises the tool results it was given."""

    def __init__(self, tools: list[dict[str, Any]]) -> None:
        self.tool_names = {tool["function"]["name"] for tool in tools}

    def complete(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        step = sum(1 for message in messages if message["role"] == "assistant")
        if step < len(PLAN):
            name, arguments = PLAN[step]
            assert name in self.tool_names
            call = {
                "id": f"call_{step}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
        mean_median = results[1]["result"]
        assert results[2] == {"path": "/workspace/total.py", "size": 22}
        total = results[4]["content"].strip()
        return {"role": "assistant", "content": f"mean, median = {mean_median}; sum = {total}"}


def run_agent(task: str) -> str:
    """Run the loop until the model answers without a tool call; return that answer."""
    with Sandbox(timeout=300, metadata={"example": "agent_loop"}) as sandbox:
        tools = SandboxTools(sandbox)
        model = ScriptedModel(tools.openai())
        messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
        while True:
            reply = model.complete(messages)
            messages.append(reply)
            if not reply.get("tool_calls"):
                return str(reply["content"])
            for call in reply["tool_calls"]:
                messages.append(tools.openai_message(call))


if __name__ == "__main__":
    print(run_agent("Describe the data [3, 1, 4, 1, 5, 9, 2, 6]."))
