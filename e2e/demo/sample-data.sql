-- Sample data for `make demo`: fictional customers with the kinds of fields dbward protects.
-- Every value is made up; card numbers pass the Luhn check, SSNs are in valid ranges.
create table customers (
  id          serial primary key,
  full_name   text not null,
  email       text not null,
  phone       text,
  ssn         text,
  card_number text,
  birth_date  date,
  notes       text
);

insert into customers (full_name, email, phone, ssn, card_number, birth_date, notes) values
  ('Ada Lovelace',     'ada@analytical.example',    '+44 20 7946 0018', '123-45-6789', '4111111111111111', '1815-12-10', 'Prefers email; cc ada.l@personal.example on invoices'),
  ('Grace Hopper',     'grace@cobol.example',       '+1 202 555 0143',  '234-56-7890', '5500005555555559', '1906-12-09', 'VIP. Call before shipping.'),
  ('Alan Turing',      'alan@bletchley.example',    '+44 161 496 0721', '345-67-8901', '340000000000009',  '1912-06-23', 'Asked for invoices by post'),
  ('Katherine Johnson','katherine@nasa.example',    '+1 757 555 0188',  '456-78-9012', '6011000000000004', '1918-08-26', 'Second contact: kj.family@home.example'),
  ('Edsger Dijkstra',  'edsger@eindhoven.example',  '+31 40 555 0199',  '567-89-0123', '3530111333300000', '1930-05-11', 'No phone calls, please');

create table orders (
  id          serial primary key,
  customer_id int not null references customers(id),
  total_cents int not null,
  placed_at   timestamptz not null default now()
);
insert into orders (customer_id, total_cents) select 1 + (g % 5), 1000 + g * 37 from generate_series(1, 20) g;
