SELECT * FROM {{ ref('raw_products') }} WHERE price < 0
