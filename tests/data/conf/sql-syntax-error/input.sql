CREATE SINK s FROM t WITH (
  connector = 'kinesis',
  stream 's'
);
