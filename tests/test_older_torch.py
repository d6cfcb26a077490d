"""What older torch releases (the declared floor is 2.1) give rflint differently from the one the
suite runs on: the shapes of fx's metadata and the words of their errors, as a QA run on torch
2.1.2, 2.4.1, 2.6.0 and 2.8.0 recorded them.  The messages below are copied from those runs."""

from torch import nn

from rflint.trace.metaspec import needs_values
from rflint.trace.tracing import module_stack


def test_torch_2_1s_module_stack_takes_the_form_of_later_releases():
    # torch 2.1 records {module path: module type}; from 2.2 {key: (module path, module type)}, the
    # form every reader here unpacks ("cannot unpack non-iterable type object" on every model)
    old = {"layer1": nn.Sequential, "layer1.0": nn.Conv2d}
    assert module_stack(old) == {"layer1": ("layer1", nn.Sequential), "layer1.0": ("layer1.0", nn.Conv2d)}
    new = {"L__self___layer1": ("layer1", nn.Sequential)}
    assert module_stack(new) is new


def test_older_torchs_words_for_an_op_that_needs_values_send_it_to_real_tensors():
    item_2_1 = NotImplementedError(
        "Could not run 'aten::_local_scalar_dense' with arguments from the 'Meta' backend. This could be "
        "because the operator doesn't exist for this backend")
    nonzero_2_6 = NotImplementedError(
        "aten::nonzero: attempted to run this operator with Meta tensors, but there was no fake impl or Meta "
        "kernel registered.")
    assert needs_values(item_2_1) and needs_values(nonzero_2_6)
    # a meta kernel that is just missing (kthvalue in 2.4) depends on no value: not retried on real tensors
    kthvalue_2_4 = NotImplementedError(
        "aten::kthvalue.values: attempted to run this operator with Meta tensors, but there was no fake impl "
        "or Meta kernel registered.")
    assert not needs_values(kthvalue_2_4)
