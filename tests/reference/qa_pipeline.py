"""transformers 4.57's question-answering pipeline (removed in transformers 5) on a local model: the reference
for batchinfer's question-answering. Run in the transformers 4 environment (scripts/transformers4-env.sh):

    python tests/reference/qa_pipeline.py request.json answers.json

request.json: {"model": folder, "calls": [{"question": [...], "context": [...], ...pipeline keywords}]}.
answers.json: one result per call, as the pipeline returns it.
"""

import json
import sys

import transformers

request = json.loads(open(sys.argv[1]).read())
qa = transformers.pipeline("question-answering", model=request["model"], device="cpu")
results = [qa(**call) for call in request["calls"]]
with open(sys.argv[2], "w") as fh:
    json.dump({"transformers": transformers.__version__, "results": results}, fh)
