"""Source formats, one module each, resolved by a source's `format:` name
through config.registry.FORMATS.
Each module exposes:
  validate_options(source, config) -> None        raises ConfigError naming sources[i].options.<key>
  list_records(source, config) -> list[RawRecord] cheap enumeration on the launcher (paths, raw labels)
  parse_record(record, source, config) -> Parsed  labels and group id of one record, or raises Reject
Optional:
  iter_records(source, config)                    the same records as a stream (a generator), what the
      -> Iterator[RawRecord]                      Beam job lists when a format has it (data_prep.listing)
  face_boxes(source) -> bool                      the format gives face boxes (crop_box) for prep.face_crop
  layout(source) -> tuple[str, ...]               what a source's local path holds, relative to it ('x/' a
                                                  folder, './' the path itself), checked by config.validate
  read_image(record) -> bytes                     the image bytes (default: the file at record.path)
  container_of(record) -> str                     for images inside shard files: records with one key
  read_container(key, records, source, config)    are read together; yields every record back, with
      -> Iterator[RawRecord]                      what parse_record / read_image need (see tfds)
The image read / prep / example building common to all formats is in data_prep.convert.
"""
from config import registry


def get_format(name: str):
    return registry.load(registry.FORMATS, name, "source format")
