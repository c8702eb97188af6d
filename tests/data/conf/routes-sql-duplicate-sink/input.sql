CREATE SINK a FROM t WITH (connector = 'kinesis', stream = 's1', aws.region = 'eu-west-1', type = 'upsert');
CREATE SINK a FROM u WITH (connector = 'kinesis', stream = 's2', aws.region = 'eu-west-1', type = 'upsert');
