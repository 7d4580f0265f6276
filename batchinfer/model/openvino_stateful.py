"""A decoder converted from PyTorch to a *stateful* OpenVINO model, for generation on the `openvino` backend.

The key/value cache lives inside the compiled model (OpenVINO variables) instead of going in and out of every
step: the CPU plugin appends each step's keys and values in place and runs attention as one fused
ScaledDotProductAttention over them, where a stateless graph concatenates and copies the whole cache per step.
Inputs: `input_ids`, `position_ids` (batch, new), `attention_mask` (batch, past + new) and `beam_idx` (batch,
int32: which row of the cache each row continues; beam search reorders, otherwise 0..batch-1). Output: `logits`
of the last position. `reset_state()` on the request empties the cache before a batch's prompt step.

The conversion is from PyTorch (not the ONNX export) so that attention stays one operation OpenVINO can fuse.
"""

from __future__ import annotations

import numpy as np

BEAM_IDX = "beam_idx"


def convert_stateful(model):
    """The transformers decoder `model` as a stateful `openvino.Model` (see the module's docstring)."""
    import torch

    from batchinfer.model.decoder_export import cache_shape, decoder_step
    from batchinfer.model.openvino_quiet import openvino

    ov = openvino()
    from openvino._offline_transformations import apply_make_stateful_transformation

    module, args, inputs, outputs, _ = decoder_step(model)
    _, kv_heads, head_dim = cache_shape(model.config)
    past_names = inputs[3:]
    shapes = [ov.PartialShape([-1, -1])] * 3 + [ov.PartialShape([-1, kv_heads, -1, head_dim])] * len(past_names)
    with torch.no_grad():
        converted = ov.convert_model(module, example_input=args, input=shapes)
    for port, name in zip(converted.inputs, inputs):
        port.get_tensor().set_names({name})
    for port, name in zip(converted.outputs, outputs):
        port.get_tensor().set_names({name})
    _no_empty_rows(converted)
    _reorder_by_beam_idx(converted, past_names)
    apply_make_stateful_transformation(converted, dict(zip(past_names, outputs[1:])))
    _start_empty(converted)
    return converted


def _no_empty_rows(model) -> None:
    """A left-padded prompt's padding positions attend to nothing: OpenVINO's attention gives NaN there (PyTorch's
    gives 0), and the NaN keys and values then spoil every later position. Such rows attend to everything instead
    (their outputs are never used, as in transformers' fix for older PyTorch)."""
    import openvino as ov
    from openvino import opset13 as ops

    for op in model.get_ops():
        if op.get_type_name() != "ScaledDotProductAttention" or op.get_input_size() < 4:
            continue
        mask = op.input_value(3)
        if mask.get_element_type() != ov.Type.boolean:
            continue
        empty = ops.logical_not(ops.reduce_logical_or(mask, ops.constant(np.array([-1], np.int64)), True))
        op.input(3).replace_source_output(ops.logical_or(mask, empty).output(0))


def _reorder_by_beam_idx(model, past_names: list[str]) -> None:
    """Each past input is read through Gather(beam_idx) on the batch axis (before it becomes a variable)."""
    import openvino as ov
    from openvino import opset13 as ops

    beam = ops.parameter(ov.PartialShape([-1]), ov.Type.i32, name=BEAM_IDX)  # i32: what the CPU plugin fuses
    beam.output(0).get_tensor().set_names({BEAM_IDX})
    model.add_parameters([beam])
    for name in past_names:
        past = model.input(name).get_node()
        readers = list(past.output(0).get_target_inputs())
        picked = ops.gather(past, beam, ops.constant(np.int64(0)))
        for reader in readers:
            reader.replace_source_output(picked.output(0))


def _start_empty(model) -> None:
    """A reset variable starts as an empty cache (batch, heads, 0, head dim) with the batch of `input_ids`."""
    from openvino import opset13 as ops

    batch = ops.gather(ops.shape_of(model.input("input_ids"), output_type="i64"),
                       ops.constant(np.array([0], np.int64)), ops.constant(np.int64(0)))
    for op in model.get_ops():
        if op.get_type_name() != "ReadValue":
            continue
        dims = [d.get_min_length() for d in op.get_output_partial_shape(0)]  # dynamic axes: 0
        shape = ops.concat([batch] + [ops.constant(np.array([d], np.int64)) for d in dims[1:]], 0)
        op.set_arguments([ops.broadcast(ops.constant(np.float32(0)), shape)])
    model.validate_nodes_and_infer_types()
