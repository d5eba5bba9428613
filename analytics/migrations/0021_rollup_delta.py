"""The rollup delta (INGEST_ROLLUPS=fold, analytics.ingest.fold): chunks append, the rollup writer folds.

No primary key and no unique index (plain INSERTs: chunks never wait on each other here); one index,
on the account, for the account pages' wait (analytics.delta.delta_settle). The columns are the staging
columns the rollups read (analytics.ingest.loader.DELTA_COLUMNS), with the staging table's types.
"""
from django.db import migrations, models

DELTA = """
CREATE TABLE analytics_rollupdelta (
    chunk_id bigint NOT NULL, hour timestamptz NOT NULL, day date NOT NULL, account_id bigint NOT NULL,
    api_key_id bigint NOT NULL, model_id bigint NOT NULL, provider_id bigint NOT NULL, app_id bigint NOT NULL,
    tokens_prompt bigint NOT NULL, tokens_completion bigint NOT NULL, tokens_reasoning bigint NOT NULL,
    tokens_cached bigint NOT NULL, cost_units bigint NOT NULL, is_byok boolean NOT NULL, latency integer,
    finish_reason text NOT NULL, num_media_prompt integer, failed smallint NOT NULL, own_attempts integer NOT NULL,
    own_failed integer NOT NULL, latency_bucket smallint, throughput_bucket smallint, end_user text NOT NULL,
    tags text NOT NULL, own_rate_limited integer NOT NULL, cost_source smallint NOT NULL
);
CREATE INDEX rollupdelta_account ON analytics_rollupdelta (account_id);
CREATE TABLE analytics_rollupdeltaattempt (
    chunk_id bigint NOT NULL, hour timestamptz NOT NULL, day date NOT NULL, model_id bigint NOT NULL,
    provider_id bigint NOT NULL, failed smallint NOT NULL, rate_limited smallint NOT NULL
);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0020_ingest_pieces'),
    ]

    operations = [
        migrations.RunSQL(DELTA, "DROP TABLE analytics_rollupdelta; DROP TABLE analytics_rollupdeltaattempt"),
        migrations.CreateModel(
            name='RollupDelta',
            fields=[
                ('chunk_id', models.BigIntegerField(help_text='the IngestChunk that appended it (not unique)', primary_key=True, serialize=False)),
                ('hour', models.DateTimeField()),
                ('day', models.DateField()),
                ('model_id', models.BigIntegerField()),
                ('provider_id', models.BigIntegerField()),
                ('failed', models.SmallIntegerField()),
                ('account_id', models.BigIntegerField()),
                ('api_key_id', models.BigIntegerField()),
                ('app_id', models.BigIntegerField()),
                ('tokens_prompt', models.BigIntegerField()),
                ('tokens_completion', models.BigIntegerField()),
                ('tokens_reasoning', models.BigIntegerField()),
                ('tokens_cached', models.BigIntegerField()),
                ('cost_units', models.BigIntegerField()),
                ('is_byok', models.BooleanField()),
                ('latency', models.IntegerField(null=True)),
                ('finish_reason', models.TextField()),
                ('num_media_prompt', models.IntegerField(null=True)),
                ('own_attempts', models.IntegerField()),
                ('own_failed', models.IntegerField()),
                ('latency_bucket', models.SmallIntegerField(null=True)),
                ('throughput_bucket', models.SmallIntegerField(null=True)),
                ('end_user', models.TextField()),
                ('tags', models.TextField()),
                ('own_rate_limited', models.IntegerField()),
                ('cost_source', models.SmallIntegerField()),
            ],
            options={
                'db_table': 'analytics_rollupdelta',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='RollupDeltaAttempt',
            fields=[
                ('chunk_id', models.BigIntegerField(help_text='the IngestChunk that appended it (not unique)', primary_key=True, serialize=False)),
                ('hour', models.DateTimeField()),
                ('day', models.DateField()),
                ('model_id', models.BigIntegerField()),
                ('provider_id', models.BigIntegerField()),
                ('failed', models.SmallIntegerField()),
                ('rate_limited', models.SmallIntegerField()),
            ],
            options={
                'db_table': 'analytics_rollupdeltaattempt',
                'managed': False,
            },
        ),
    ]
