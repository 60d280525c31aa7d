//! Validated transactions in columnar form (their aggregation is [`crate::domain::activity`]).

use crate::domain::calendar::Day;

/// Numeric customer attributes aligned with the transactions' customer numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerAttributes {
    pub names: Vec<String>,
    /// `values[c * names.len() + k]`: attribute k of customer c; NaN when missing.
    pub values: Vec<f64>,
}

/// Validated transactions, one entry per input row, in columns. Customers are numbered densely;
/// `customer_ids` maps the numbers back to the caller's ids (the file readers number them in id
/// byte order, [`Transactions::number_customers_by_id`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transactions {
    pub customer_ids: Vec<String>,
    pub customer: Vec<u32>,
    pub day: Vec<Day>,
    pub amount: Vec<f64>,
    /// Margin (profit) per row, when the source has such a column.
    pub margin: Option<Vec<f64>>,
}

impl Transactions {
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }

    pub fn customers(&self) -> usize {
        self.customer_ids.len()
    }

    /// Keeps the rows dated within `first..=last`, and the customers that still have one
    /// (renumbered densely in their previous order); returns the number of rows left out.
    pub fn retain_days(&mut self, first: Day, last: Day) -> u64 {
        let keep: Vec<bool> = self.day.iter().map(|d| (first..=last).contains(d)).collect();
        let dropped = keep.iter().filter(|k| !**k).count() as u64;
        if dropped == 0 {
            return 0;
        }
        let mut kept_customer = vec![false; self.customer_ids.len()];
        for (i, &k) in keep.iter().enumerate() {
            kept_customer[self.customer[i] as usize] |= k;
        }
        let mut renumber = vec![u32::MAX; self.customer_ids.len()];
        let mut ids = Vec::new();
        for (c, &k) in kept_customer.iter().enumerate() {
            if k {
                renumber[c] = ids.len() as u32;
                ids.push(std::mem::take(&mut self.customer_ids[c]));
            }
        }
        let mut out = Transactions { margin: self.margin.as_ref().map(|_| Vec::new()), ..Default::default() };
        for (i, &k) in keep.iter().enumerate() {
            if !k {
                continue;
            }
            out.customer.push(renumber[self.customer[i] as usize]);
            out.day.push(self.day[i]);
            out.amount.push(self.amount[i]);
            if let (Some(m), Some(src)) = (&mut out.margin, &self.margin) {
                m.push(src[i]);
            }
        }
        out.customer_ids = ids;
        *self = out;
        dropped
    }

    /// Earliest and latest day, or `None` when there are no rows.
    pub fn day_range(&self) -> Option<(Day, Day)> {
        let min = *self.day.iter().min()?;
        let max = *self.day.iter().max()?;
        Some((min, max))
    }
}

/// The largest amount (or margin) magnitude accepted per row: beyond any real transaction, and
/// small enough that it is exact at [`crate::domain::activity::AMOUNT_DECIMALS`] places in an
/// `f64` (10^15 units < 2^53) and sums of squares over billions of rows stay finite.
pub const MAX_AMOUNT: f64 = 1e11;

impl Transactions {
    /// Renumbers the customers in the order of their ids' bytes (the activity table's order, so
    /// that a model does not depend on the order of the input rows); returns the map from old
    /// number to new.
    pub fn number_customers_by_id(&mut self) -> Vec<u32> {
        if self.customer_ids.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()) {
            return (0..self.customer_ids.len() as u32).collect();
        }
        let mut order: Vec<u32> = (0..self.customer_ids.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            self.customer_ids[a as usize].as_bytes().cmp(self.customer_ids[b as usize].as_bytes())
        });
        let mut new_of_old = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_of_old[old as usize] = new as u32;
        }
        if order.iter().enumerate().any(|(new, &old)| new as u32 != old) {
            let mut ids: Vec<String> =
                order.iter().map(|&old| std::mem::take(&mut self.customer_ids[old as usize])).collect();
            std::mem::swap(&mut self.customer_ids, &mut ids);
            for c in &mut self.customer {
                *c = new_of_old[*c as usize];
            }
        }
        new_of_old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_renumbered_in_id_byte_order_and_rows_follow() {
        let mut tx = Transactions {
            customer_ids: vec!["b".into(), "a".into(), "\u{e9}".into(), "B".into()],
            customer: vec![0, 1, 2, 3, 0],
            day: vec![1, 2, 3, 4, 5],
            amount: vec![1.0, 2.0, 3.0, 4.0, 5.0],
            margin: None,
        };
        assert_eq!(tx.number_customers_by_id(), vec![2, 1, 3, 0]);
        assert_eq!(tx.customer_ids, ["B", "a", "b", "\u{e9}"]);
        assert_eq!(tx.customer, [2, 1, 3, 0, 2]);
    }

    #[test]
    fn rows_outside_a_date_range_are_left_out_with_their_customers() {
        let mut tx = Transactions {
            customer_ids: vec!["a".into(), "b".into(), "c".into()],
            customer: vec![0, 1, 2, 1],
            day: vec![5, 50, 10, 9],
            amount: vec![1.0, 2.0, 3.0, 4.0],
            margin: None,
        };
        assert_eq!(tx.retain_days(8, 20), 2);
        assert_eq!(tx.customer_ids, ["b", "c"]);
        assert_eq!((tx.customer, tx.day), (vec![1, 0], vec![10, 9]));
    }
}
