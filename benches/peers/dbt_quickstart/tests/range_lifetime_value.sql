{{ config(severity='warn') }}
SELECT * FROM {{ ref('marts_customer_lifetime_value') }} WHERE lifetime_value > 1000
