"""tf.train.Example as a protobuf message class that does not import TensorFlow.

Every Beam worker that serializes examples would otherwise import TensorFlow
(~6 s of CPU a worker on this machine) before its first record: with 2
DirectRunner workers that was most of a 3,000-image job. The messages below
are TensorFlow's own `tensorflow/core/example/{example,feature}.proto`
(same package, names, field numbers and packing), built into a private
descriptor pool so they never clash with TensorFlow's when both are loaded;
the wire bytes parse as `tf.train.Example` (tests/data_prep pin that).
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_T = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(name="tensorflow/core/example/example.proto",
                                           package="tensorflow", syntax="proto3")

    def message(name, *fields, nested=()):
        m = f.message_type.add(name=name)
        for nested_m in nested:
            m.nested_type.add().CopyFrom(nested_m)
        for number, (field_name, kind, label, type_name, packed) in enumerate(fields, start=1):
            field = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
            if packed:
                field.options.packed = True
        return m

    repeated, optional = _T.LABEL_REPEATED, _T.LABEL_OPTIONAL
    message("BytesList", ("value", _T.TYPE_BYTES, repeated, "", False))
    message("FloatList", ("value", _T.TYPE_FLOAT, repeated, "", True))
    message("Int64List", ("value", _T.TYPE_INT64, repeated, "", True))
    feature = message("Feature", ("bytes_list", _T.TYPE_MESSAGE, optional, ".tensorflow.BytesList", False),
                      ("float_list", _T.TYPE_MESSAGE, optional, ".tensorflow.FloatList", False),
                      ("int64_list", _T.TYPE_MESSAGE, optional, ".tensorflow.Int64List", False))
    feature.oneof_decl.add(name="kind")
    for field in feature.field:
        field.oneof_index = 0
    entry = descriptor_pb2.DescriptorProto(name="FeatureEntry", options=descriptor_pb2.MessageOptions(map_entry=True))
    entry.field.add(name="key", number=1, type=_T.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=_T.TYPE_MESSAGE, label=optional, type_name=".tensorflow.Feature")
    message("Features", ("feature", _T.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry", False),
            nested=(entry,))
    message("Example", ("features", _T.TYPE_MESSAGE, optional, ".tensorflow.Features", False))
    return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
# protobuf 3.20 (pinned by TFX 1.16) has MessageFactory.GetPrototype; newer ones also GetMessageClass.
Example = message_factory.MessageFactory(_POOL).GetPrototype(_POOL.FindMessageTypeByName("tensorflow.Example"))
