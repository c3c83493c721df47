import { describe, expect, it } from 'vitest';
import { classifyByName, isPersonTable, nameTokens } from './detect-name.js';

describe('nameTokens', () => {
  it.each([
    ['billing_email', ['billing', 'email']],
    ['billingEmailAddress2', ['billing', 'email', 'address', '2']],
    ['IPAddress', ['ip', 'address']],
    ['client-ip', ['client', 'ip']],
    ['Address_Line1', ['address', 'line', '1']],
    ['E_MAIL', ['e', 'mail']],
  ])('%s', (name, tokens) => {
    expect(nameTokens(name)).toEqual(tokens);
  });
});

describe('classifyByName', () => {
  const cases: [table: string, name: string, type: string, classes: string[]][] = [
    // email
    ['public.customers', 'email', 'text', ['email']],
    ['public.customers', 'e_mail', 'varchar', ['email']],
    ['public.customers', 'mail', 'text', ['email']],
    ['public.customers', 'emailAddress', 'citext', ['email']],
    ['public.orders', 'billing_email', 'text', ['email']],
    ['public.customers', 'email_hash', 'bytea', ['email']],
    ['public.customers', 'emails', '_text', ['email']],
    ['public.customers', 'email_verified', 'bool', []],
    ['public.customers', 'email_verified_at', 'timestamptz', []],
    ['public.customers', 'is_email_public', 'text', []],
    ['public.customers', 'email_domain', 'text', []],
    ['public.customers', 'email_count', 'int4', []],
    ['public.customers', 'customer_email_id', 'int8', []],
    ['public.settings', 'mail_server', 'text', []],
    // phone
    ['public.customers', 'phone', 'text', ['phone']],
    ['public.customers', 'mobile', 'varchar', ['phone']],
    ['public.customers', 'tel', 'text', ['phone']],
    ['public.subscribers', 'msisdn', 'int8', ['phone']],
    ['public.customers', 'phone_number', 'text', ['phone']],
    ['public.customers', 'workPhone', 'text', ['phone']],
    ['public.customers', 'phone_count', 'int4', []],
    ['public.customers', 'phone_country_code', 'text', []],
    ['public.sessions', 'is_mobile', 'bool', []],
    ['public.devices', 'mobile', 'bool', []],
    // ssn
    ['public.employees', 'ssn', 'text', ['ssn']],
    ['public.employees', 'ssn', 'int4', ['ssn']],
    ['public.employees', 'social_security_number', 'text', ['ssn']],
    ['public.employees', 'ssn_last4', 'text', []],
    // credit cards
    ['public.payments', 'card', 'text', ['credit_card']],
    ['public.payments', 'card_number', 'varchar', ['credit_card']],
    ['public.payments', 'cc_number', 'numeric', ['credit_card']],
    ['public.payments', 'pan', 'bpchar', ['credit_card']],
    ['public.payments', 'creditCardNumber', 'text', ['credit_card']],
    ['public.payments', 'card_type', 'text', []],
    ['public.payments', 'card_brand', 'text', []],
    ['public.payments', 'card_expiry_month', 'int2', []],
    ['public.payments', 'card_token', 'text', ['api_key']],
    // iban
    ['public.accounts', 'iban', 'text', ['iban']],
    ['public.accounts', 'payout_iban', 'varchar', ['iban']],
    ['public.accounts', 'iban_country', 'text', []],
    // ip
    ['public.logins', 'ip', 'inet', ['ip_address']],
    ['public.logins', 'ip_address', 'text', ['ip_address']],
    ['public.logins', 'client_ip', 'inet', ['ip_address']],
    ['public.logins', 'inet', 'inet', ['ip_address']],
    ['public.logins', 'last_login_ip', 'inet', ['ip_address']],
    ['public.logins', 'ip_country', 'text', []],
    ['public.devices', 'mac_address', 'macaddr', []],
    ['public.devices', 'mac_address', 'text', []],
    // person names
    ['public.orders', 'first_name', 'text', ['person_name']],
    ['public.orders', 'lastName', 'text', ['person_name']],
    ['public.orders', 'full_name', 'text', ['person_name']],
    ['public.orders', 'customer_name', 'text', ['person_name']],
    ['public.payments', 'cardholder_name', 'text', ['person_name']],
    ['public.customers', 'name', 'text', ['person_name']],
    ['crm.people', 'name', 'text', ['person_name']],
    ['hr.employees', 'display_name', 'text', ['person_name']],
    ['public.patient_records', 'name', 'text', ['person_name']],
    ['public.products', 'name', 'text', []],
    ['public.customers', 'company_name', 'text', []],
    ['public.customers', 'name_id', 'int4', []],
    ['public.users', 'username', 'text', []],
    ['public.users', 'user_name', 'text', []],
    ['public.files', 'file_name', 'text', []],
    // addresses
    ['public.customers', 'address', 'text', ['address']],
    ['public.customers', 'street', 'text', ['address']],
    ['public.customers', 'city', 'text', ['address']],
    ['public.customers', 'zip', 'bpchar', ['address']],
    ['public.customers', 'postcode', 'text', ['address']],
    ['public.customers', 'postal_code', 'text', ['address']],
    ['public.customers', 'address_line_1', 'text', ['address']],
    ['public.customers', 'shippingAddress', 'jsonb', ['address']],
    ['public.customers', 'address_id', 'int8', []],
    ['public.customers', 'email_address', 'text', ['email']],
    ['public.wallets', 'wallet_address', 'text', []],
    ['public.exports', 'zip_file', 'bytea', []],
    // date of birth
    ['public.customers', 'dob', 'date', ['date_of_birth']],
    ['public.customers', 'birth_date', 'date', ['date_of_birth']],
    ['public.customers', 'date_of_birth', 'timestamp', ['date_of_birth']],
    ['public.customers', 'birthday', 'text', ['date_of_birth']],
    ['public.customers', 'birthday', 'bool', []],
    // credentials
    ['public.users', 'password', 'text', ['password']],
    ['public.users', 'passwd', 'text', ['password']],
    ['public.users', 'pwd', 'varchar', ['password']],
    ['public.users', 'password_hash', 'bytea', ['password']],
    ['public.users', 'encrypted_password', 'text', ['password']],
    ['public.users', 'password_changed_at', 'timestamptz', []],
    ['public.users', 'password_reset_token', 'text', ['api_key']],
    ['public.apps', 'secret', 'text', ['secret']],
    ['public.apps', 'client_secret', 'text', ['secret']],
    ['public.apps', 'webhook_secret', 'text', ['secret']],
    ['public.apps', 'private_key', 'text', ['secret']],
    ['public.apps', 'api_key', 'text', ['api_key']],
    ['public.apps', 'apikey', 'text', ['api_key']],
    ['public.apps', 'apiKey', 'uuid', ['api_key']],
    ['public.sessions', 'access_token', 'text', ['api_key']],
    ['public.sessions', 'refresh_token', 'text', ['api_key']],
    ['public.sessions', 'token', 'text', ['api_key']],
    ['public.sessions', 'token_type', 'text', []],
    ['public.sessions', 'token_expires_at', 'timestamptz', []],
    ['public.usage', 'prompt_tokens', 'int4', []],
    ['public.usage', 'max_tokens', 'int4', []],
    ['public.apps', 'api_key_id', 'int8', []],
    // nothing
    ['public.orders', 'total', 'numeric', []],
    ['public.orders', 'id', 'int8', []],
    ['public.orders', 'notes', 'text', []],
  ];
  it.each(cases)('%s.%s %s → %j', (table, name, type, classes) => {
    expect(classifyByName({ table, name, type }).classes).toEqual(classes);
  });

  it('explains matches and misses', () => {
    expect(classifyByName({ table: 'public.customers', name: 'customer_email', type: 'text' }).reason).toBe('name customer_email: "email" → email');
    expect(classifyByName({ table: 'public.customers', name: 'email_verified', type: 'bool' }).reason).toContain('followed by "verified"');
    expect(classifyByName({ table: 'public.customers', name: 'ssn', type: 'bool' }).reason).toContain('a bool column cannot hold one');
    expect(classifyByName({ table: 'public.products', name: 'name', type: 'text' }).reason).toContain('only in a table about people');
  });

  it('accepts format_type spellings and unknown types', () => {
    expect(classifyByName({ table: '', name: 'ssn', type: 'integer' }).classes).toEqual(['ssn']);
    expect(classifyByName({ table: '', name: 'email', type: 'character varying(255)' }).classes).toEqual(['email']);
    expect(classifyByName({ table: '', name: 'email', type: 'boolean' }).classes).toEqual([]);
    expect(classifyByName({ table: '', name: 'email', type: 'email_domain_type' }).classes).toEqual(['email']);
    expect(classifyByName({ table: '', name: 'email', type: '' }).classes).toEqual(['email']);
  });

  it.each([
    ['public.customers', true],
    ['users', true],
    ['crm.people', true],
    ['public.customer_contacts', true],
    ['public.products', false],
    ['public.orders', false],
  ])('isPersonTable(%s) = %s', (table, expected) => {
    expect(isPersonTable(table)).toBe(expected);
  });
});
