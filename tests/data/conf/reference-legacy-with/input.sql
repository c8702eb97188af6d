-- The reference's older form: type and force_append_only inside WITH.
create sink if not exists s2 from orders with (
  connector = 'kinesis',
  stream = 'orders',
  aws.region = 'us-west-2',
  endpoint = 'http://127.0.0.1:4567',
  type = 'append-only',
  force_append_only = 'TRUE',
  primary_key = 'id'
);
