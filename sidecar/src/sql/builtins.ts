/**
 * Static knowledge of PostgreSQL's built-ins, used when no catalog snapshot says otherwise:
 * functions known not to modify anything, set-returning functions' column names, built-in
 * operators, and the pg_catalog relations an unqualified name resolves to.
 */

/**
 * pg_catalog functions that read or compute but never modify the database, the server's files or
 * other sessions. Volatile-but-harmless ones (random, clock_timestamp, gen_random_uuid) are in;
 * nextval/setval, advisory locks, pg_sleep, pg_terminate_backend, set_config, lo_*, file access,
 * dblink and the *_to_xml family (they run SQL given as text) are out. Conservative by design: a
 * function not listed here makes a statement's effect unknown.
 */
export const READ_ONLY_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'array_agg', 'string_agg', 'json_agg', 'jsonb_agg', 'json_object_agg',
  'jsonb_object_agg', 'json_agg_strict', 'jsonb_agg_strict', 'json_object_agg_strict', 'jsonb_object_agg_strict',
  'json_object_agg_unique', 'jsonb_object_agg_unique', 'json_object_agg_unique_strict', 'jsonb_object_agg_unique_strict',
  'bool_and', 'bool_or', 'every', 'bit_and', 'bit_or', 'bit_xor', 'xmlagg', 'any_value',
  'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp', 'corr', 'covar_pop', 'covar_samp',
  'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy',
  'percentile_cont', 'percentile_disc', 'mode', 'range_agg', 'range_intersect_agg',
  // window functions
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value',
  'last_value', 'nth_value',
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length',
  'substr', 'substring', 'left', 'right', 'lpad', 'rpad', 'trim', 'btrim', 'ltrim', 'rtrim', 'replace', 'translate',
  'concat', 'concat_ws', 'format', 'repeat', 'reverse', 'position', 'strpos', 'split_part', 'starts_with',
  'overlay', 'ascii', 'chr', 'quote_ident', 'quote_literal', 'quote_nullable', 'regexp_replace', 'regexp_match',
  'regexp_matches', 'regexp_split_to_array', 'regexp_split_to_table', 'regexp_like', 'regexp_count', 'regexp_instr',
  'regexp_substr', 'string_to_array', 'string_to_table', 'array_to_string', 'to_hex', 'to_ascii', 'md5', 'sha224',
  'sha256', 'sha384', 'sha512', 'encode', 'decode', 'convert', 'convert_from', 'convert_to', 'normalize',
  'unistr', 'casefold', 'crc32', 'crc32c', 'similar_to_escape', 'like_escape', 'parse_ident', 'to_bin', 'to_oct',
  'textlen', 'textcat', 'texticlike', 'textlike', 'get_byte', 'set_byte', 'get_bit', 'set_bit', 'bit_count',
  // numbers
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'sign', 'sqrt', 'cbrt', 'power', 'pow', 'exp', 'ln', 'log',
  'log10', 'mod', 'div', 'pi', 'degrees', 'radians', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'atan2', 'sinh',
  'cosh', 'tanh', 'gcd', 'lcm', 'factorial', 'width_bucket', 'scale', 'min_scale', 'trim_scale', 'random',
  'random_normal', 'greatest', 'least', 'numeric', 'int4', 'int8', 'int2', 'float4', 'float8', 'text', 'varchar',
  'bool', 'date', 'timestamp', 'timestamptz', 'interval', 'time', 'timetz', 'erf', 'erfc', 'gamma', 'lgamma',
  // formatting and casts
  'to_char', 'to_date', 'to_number', 'to_timestamp', 'cast', 'pg_typeof', 'format_type', 'to_regclass',
  'to_regtype', 'to_regproc', 'to_regprocedure', 'to_regnamespace', 'to_regrole', 'to_regoper', 'to_regcollation',
  // date and time
  'now', 'current_timestamp', 'current_date', 'current_time', 'localtime', 'localtimestamp', 'clock_timestamp',
  'statement_timestamp', 'transaction_timestamp', 'timeofday', 'date_trunc', 'date_part', 'extract', 'date_bin',
  'age', 'make_date', 'make_time', 'make_timestamp', 'make_timestamptz', 'make_interval', 'justify_days',
  'justify_hours', 'justify_interval', 'isfinite', 'timezone', 'date_add', 'date_subtract', 'overlaps',
  // json / jsonb
  'to_json', 'to_jsonb', 'row_to_json', 'array_to_json', 'json_build_object', 'jsonb_build_object',
  'json_build_array', 'jsonb_build_array', 'json_object', 'jsonb_object', 'json_array_length', 'jsonb_array_length',
  'json_each', 'jsonb_each', 'json_each_text', 'jsonb_each_text', 'json_extract_path', 'jsonb_extract_path',
  'json_extract_path_text', 'jsonb_extract_path_text', 'json_object_keys', 'jsonb_object_keys',
  'json_populate_record', 'jsonb_populate_record', 'json_populate_recordset', 'jsonb_populate_recordset',
  'json_to_record', 'jsonb_to_record', 'json_to_recordset', 'jsonb_to_recordset', 'json_array_elements',
  'jsonb_array_elements', 'json_array_elements_text', 'jsonb_array_elements_text', 'json_typeof', 'jsonb_typeof',
  'json_strip_nulls', 'jsonb_strip_nulls', 'jsonb_set', 'jsonb_set_lax', 'jsonb_insert', 'jsonb_pretty',
  'jsonb_path_exists', 'jsonb_path_match', 'jsonb_path_query', 'jsonb_path_query_array', 'jsonb_path_query_first',
  'jsonb_path_exists_tz', 'jsonb_path_match_tz', 'jsonb_path_query_tz', 'jsonb_path_query_array_tz',
  'jsonb_path_query_first_tz', 'jsonb_concat', 'jsonb_contains', 'jsonb_exists', 'jsonb_delete', 'jsonb_delete_path',
  'json_scalar', 'json_serialize', 'jsonb_populate_record_valid', 'to_tsvector', 'to_tsquery', 'plainto_tsquery',
  'phraseto_tsquery', 'websearch_to_tsquery', 'ts_rank', 'ts_rank_cd', 'ts_headline', 'setweight', 'strip',
  'tsvector_to_array', 'array_to_tsvector', 'numnode', 'querytree', 'ts_lexize', 'ts_debug', 'ts_parse',
  // arrays and ranges
  'array_length', 'array_lower', 'array_upper', 'array_ndims', 'array_dims', 'array_append', 'array_prepend',
  'array_cat', 'array_remove', 'array_replace', 'array_position', 'array_positions', 'array_fill', 'cardinality',
  'unnest', 'generate_series', 'generate_subscripts', 'array_reverse', 'array_sample', 'array_shuffle', 'array_sort',
  'trim_array', 'lower_inc', 'upper_inc', 'lower_inf', 'upper_inf', 'isempty', 'range_merge', 'multirange',
  'int4range', 'int8range', 'numrange', 'tsrange', 'tstzrange', 'daterange',
  // xml (not the *_to_xml family)
  'xmlcomment', 'xmlconcat', 'xmlelement', 'xmlforest', 'xmlpi', 'xmlroot', 'xmlparse', 'xmlserialize', 'xpath',
  'xpath_exists', 'xml_is_well_formed', 'xml_is_well_formed_document', 'xml_is_well_formed_content', 'xmlexists',
  'xmltext',
  // uuid, network, geometry, misc
  'gen_random_uuid', 'uuidv4', 'uuidv7', 'uuid_extract_timestamp', 'uuid_extract_version', 'host', 'hostmask',
  'masklen', 'netmask', 'network', 'broadcast', 'family', 'inet_same_family', 'inet_merge', 'abbrev', 'set_masklen',
  'area', 'center', 'diameter', 'height', 'width', 'radius', 'point', 'box', 'circle', 'line', 'lseg', 'path',
  'polygon', 'num_nulls', 'num_nonnulls', 'nullif', 'coalesce', 'grouping',
  // session and catalog information (read-only)
  'current_setting', 'current_user', 'current_role', 'session_user', 'user', 'current_schema', 'current_schemas',
  'current_database', 'current_catalog', 'current_query', 'version', 'pg_backend_pid', 'inet_client_addr',
  'inet_client_port', 'inet_server_addr', 'inet_server_port', 'pg_postmaster_start_time', 'pg_conf_load_time',
  'pg_is_in_recovery', 'pg_current_wal_lsn', 'txid_current_snapshot', 'pg_current_snapshot', 'txid_visible_in_snapshot',
  'pg_visible_in_snapshot', 'pg_snapshot_xmin', 'pg_snapshot_xmax', 'pg_snapshot_xip', 'txid_current_if_assigned',
  'pg_current_xact_id_if_assigned', 'pg_xact_status', 'txid_status', 'pg_jit_available', 'pg_trigger_depth',
  'pg_get_viewdef', 'pg_get_ruledef', 'pg_get_indexdef', 'pg_get_constraintdef', 'pg_get_triggerdef',
  'pg_get_functiondef', 'pg_get_function_arguments', 'pg_get_function_result', 'pg_get_function_identity_arguments',
  'pg_get_expr', 'pg_get_userbyid', 'pg_get_serial_sequence', 'pg_get_keywords', 'pg_get_statisticsobjdef',
  'pg_get_partkeydef', 'pg_get_partition_constraintdef', 'pg_get_replica_identity_index', 'pg_index_column_has_property',
  'pg_index_has_property', 'pg_indexam_has_property', 'pg_options_to_table', 'pg_table_is_visible',
  'pg_type_is_visible', 'pg_function_is_visible', 'pg_operator_is_visible', 'pg_opclass_is_visible',
  'pg_collation_is_visible', 'pg_conversion_is_visible', 'pg_ts_config_is_visible', 'pg_my_temp_schema',
  'pg_is_other_temp_schema', 'pg_encoding_to_char', 'pg_char_to_encoding', 'pg_client_encoding', 'obj_description',
  'col_description', 'shobj_description', 'has_table_privilege', 'has_column_privilege', 'has_any_column_privilege',
  'has_database_privilege', 'has_schema_privilege', 'has_sequence_privilege', 'has_function_privilege',
  'has_language_privilege', 'has_tablespace_privilege', 'has_type_privilege', 'has_foreign_data_wrapper_privilege',
  'has_server_privilege', 'has_parameter_privilege', 'has_largeobject_privilege', 'pg_has_role',
  'row_security_active', 'pg_relation_size', 'pg_total_relation_size', 'pg_table_size', 'pg_indexes_size',
  'pg_database_size', 'pg_tablespace_size', 'pg_column_size', 'pg_size_pretty', 'pg_size_bytes', 'pg_relation_filenode',
  'pg_relation_filepath', 'pg_tablespace_location', 'pg_column_compression', 'pg_column_toast_chunk_id',
  'currval', 'lastval', 'pg_sequence_last_value', 'pg_input_is_valid', 'pg_input_error_info', 'pg_describe_object',
  'pg_identify_object', 'pg_identify_object_as_address', 'pg_get_object_address', 'pg_typeof', 'array_in',
  'pg_stat_get_numscans', 'pg_postmaster_start_time', 'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids',
  'pg_last_committed_xact', 'pg_get_wal_replay_pause_state', 'pg_is_wal_replay_paused', 'pg_last_wal_receive_lsn',
  'pg_last_wal_replay_lsn', 'pg_last_xact_replay_timestamp', 'pg_wal_lsn_diff', 'pg_walfile_name',
  'pg_settings_get_flags', 'pg_get_catalog_foreign_keys', 'pg_tablespace_databases', 'nameconcatoid', 'acldefault',
  'aclexplode', 'aclcontains', 'makeaclitem', 'pg_relation_is_updatable', 'pg_column_is_updatable',
  'pg_get_function_arg_default', 'pg_get_function_sqlbody', 'pg_get_publication_tables', 'getdatabaseencoding',
]);

/** Monitoring functions that only read statistics and server state (volatile, but harmless). */
const READ_ONLY_PREFIXES = ['pg_stat_get_'];
const READ_ONLY_MONITORING = new Set([
  'pg_lock_status', 'pg_show_all_settings', 'pg_show_all_file_settings', 'pg_hba_file_rules', 'pg_ident_file_mappings',
  'pg_prepared_xact', 'pg_get_shmem_allocations', 'pg_get_backend_memory_contexts', 'pg_cursor', 'pg_prepared_statement',
  'pg_timezone_names', 'pg_timezone_abbrevs', 'pg_get_replication_slots', 'pg_show_replication_origin_status',
  'pg_available_extensions', 'pg_available_extension_versions', 'pg_config', 'pg_get_wait_events', 'pg_get_aios',
]);

/** Is `name` (unqualified, lower-case) a pg_catalog function known not to modify anything? */
export function isReadOnlyBuiltin(name: string): boolean {
  return READ_ONLY_FUNCTIONS.has(name) || READ_ONLY_MONITORING.has(name) || READ_ONLY_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Column names of built-in set-returning functions used in FROM; `null` means one column named
 * after the alias or the function. Anything else in FROM without a column definition list has an
 * unknown shape.
 */
export const SET_RETURNING_COLUMNS: ReadonlyMap<string, readonly string[] | null> = new Map<string, readonly string[] | null>([
  ['generate_series', null],
  ['generate_subscripts', null],
  ['unnest', null],
  ['regexp_matches', null],
  ['regexp_split_to_table', null],
  ['string_to_table', null],
  ['json_array_elements', null],
  ['jsonb_array_elements', null],
  ['json_array_elements_text', null],
  ['jsonb_array_elements_text', null],
  ['json_object_keys', null],
  ['jsonb_object_keys', null],
  ['jsonb_path_query', null],
  ['jsonb_path_query_tz', null],
  ['json_each', ['key', 'value']],
  ['jsonb_each', ['key', 'value']],
  ['json_each_text', ['key', 'value']],
  ['jsonb_each_text', ['key', 'value']],
  ['pg_options_to_table', ['option_name', 'option_value']],
  ['ts_debug', ['alias', 'description', 'token', 'dictionaries', 'dictionary', 'lexemes']],
  ['ts_parse', ['tokid', 'token']],
]);

/**
 * Operators PostgreSQL ships. A statement using any other operator may call a user-defined
 * function through it, so its effect is unknown.
 */
export const BUILTIN_OPERATORS: ReadonlySet<string> = new Set([
  '=', '<>', '!=', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '^', '||', '|/', '||/', '@', '&', '|', '#', '~',
  '<<', '>>', '~~', '!~~', '~~*', '!~~*', '~*', '!~', '!~*', '@>', '<@', '&&', '?', '?|', '?&', '->', '->>', '#>',
  '#>>', '#-', '@?', '@@', '@@@', '<->', '<#>', '<=>', '&<', '&>', '<<|', '|>>', '&<|', '|&>', '<^', '>^', '?#',
  '?-', '?|', '?-|', '?||', '~=', '<<=', '>>=', '-|-', '!!', '##', '@-@', '^@', '<%', '%>', '<<%', '%>>', '<<->',
  '<->>', '=>',
]);

/**
 * pg_catalog relations commonly named without a schema. pg_catalog is searched first (unless the
 * search_path places it elsewhere), so without a catalog snapshot these names resolve there.
 */
export const PG_CATALOG_RELATIONS: ReadonlySet<string> = new Set([
  'pg_aggregate', 'pg_am', 'pg_amop', 'pg_amproc', 'pg_attrdef', 'pg_attribute', 'pg_auth_members', 'pg_authid',
  'pg_cast', 'pg_class', 'pg_collation', 'pg_constraint', 'pg_conversion', 'pg_database', 'pg_db_role_setting',
  'pg_default_acl', 'pg_depend', 'pg_description', 'pg_enum', 'pg_event_trigger', 'pg_extension',
  'pg_foreign_data_wrapper', 'pg_foreign_server', 'pg_foreign_table', 'pg_index', 'pg_inherits', 'pg_init_privs',
  'pg_language', 'pg_largeobject', 'pg_largeobject_metadata', 'pg_namespace', 'pg_opclass', 'pg_operator',
  'pg_opfamily', 'pg_parameter_acl', 'pg_partitioned_table', 'pg_policy', 'pg_proc', 'pg_publication',
  'pg_publication_namespace', 'pg_publication_rel', 'pg_range', 'pg_replication_origin', 'pg_rewrite',
  'pg_seclabel', 'pg_sequence', 'pg_shdepend', 'pg_shdescription', 'pg_shseclabel', 'pg_statistic',
  'pg_statistic_ext', 'pg_statistic_ext_data', 'pg_subscription', 'pg_subscription_rel', 'pg_tablespace',
  'pg_transform', 'pg_trigger', 'pg_ts_config', 'pg_ts_config_map', 'pg_ts_dict', 'pg_ts_parser', 'pg_ts_template',
  'pg_type', 'pg_user_mapping',
  // system views
  'pg_available_extensions', 'pg_available_extension_versions', 'pg_backend_memory_contexts', 'pg_config',
  'pg_cursors', 'pg_file_settings', 'pg_group', 'pg_hba_file_rules', 'pg_ident_file_mappings', 'pg_indexes',
  'pg_locks', 'pg_matviews', 'pg_policies', 'pg_prepared_statements', 'pg_prepared_xacts', 'pg_publication_tables',
  'pg_replication_origin_status', 'pg_replication_slots', 'pg_roles', 'pg_rules', 'pg_seclabels', 'pg_sequences',
  'pg_settings', 'pg_shadow', 'pg_shmem_allocations', 'pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_tables',
  'pg_timezone_abbrevs', 'pg_timezone_names', 'pg_user', 'pg_user_mappings', 'pg_views', 'pg_wait_events',
  'pg_stat_activity', 'pg_stat_all_indexes', 'pg_stat_all_tables', 'pg_stat_archiver', 'pg_stat_bgwriter',
  'pg_stat_checkpointer', 'pg_stat_database', 'pg_stat_database_conflicts', 'pg_stat_gssapi', 'pg_stat_io',
  'pg_stat_progress_analyze', 'pg_stat_progress_basebackup', 'pg_stat_progress_cluster',
  'pg_stat_progress_copy', 'pg_stat_progress_create_index', 'pg_stat_progress_vacuum', 'pg_stat_recovery_prefetch',
  'pg_stat_replication', 'pg_stat_replication_slots', 'pg_stat_slru', 'pg_stat_ssl', 'pg_stat_subscription',
  'pg_stat_subscription_stats', 'pg_stat_sys_indexes', 'pg_stat_sys_tables', 'pg_stat_user_functions',
  'pg_stat_user_indexes', 'pg_stat_user_tables', 'pg_stat_wal', 'pg_stat_wal_receiver', 'pg_stat_xact_all_tables',
  'pg_stat_xact_sys_tables', 'pg_stat_xact_user_functions', 'pg_stat_xact_user_tables', 'pg_statio_all_indexes',
  'pg_statio_all_sequences', 'pg_statio_all_tables', 'pg_statio_sys_indexes', 'pg_statio_sys_sequences',
  'pg_statio_sys_tables', 'pg_statio_user_indexes', 'pg_statio_user_sequences', 'pg_statio_user_tables',
  'pg_aios',
]);
