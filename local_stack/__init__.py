"""The local stack and its stand-ins, one shipped package (layer 4: imports llm_gateway, agent, clients,
tools, config, corpus; never stacks, eval, frontend, scripts or tests).

- `processes`: ManagedProcess (log file, bounded health wait naming the component, stop of the whole
  process group), free_port, wait_for_http.
- `components`: the launch command + environment of the tool server, the agent, the LiteLLM gateway and
  the Streamlit chat, written once.
- `stack`: `plan()` + `LocalStack`, the stack assembled once (`make local`, e2e, `make eval`, browser
  test, reliability suite, `make soak`).
- stand-ins, all on `loopback.LoopbackServer`: `scripted_model` (OpenAI-compatible), `otlp_recorder`
  (Langfuse OTLP + public API), `replay_agent` (the agent's /invocations); `scripted_strands` (an
  in-process Strands model) and `light_tools` (the tool server with a keyword knowledge backend).
"""
