//! Sufficient statistics of least-squares fits, and their solution (the normal equations).

/// Sufficient statistics of a least-squares fit with intercept, for one or more targets that
/// share the design (X'X once, X'y and y'y per target). Mergeable.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendMoments {
    pub(super) p: usize,
    pub(super) targets: usize,
    pub(super) xtx: Vec<f64>,
    /// `xty[t * p + i]`: target t.
    pub(super) xty: Vec<f64>,
    pub(super) yty: Vec<f64>,
    pub(super) n: u64,
    /// Scratch: the non-zero features of the observation being added.
    pub(super) nz: Vec<(usize, f64)>,
}

impl SpendMoments {
    /// Empty moments for `features` features (plus intercept) and one target.
    pub fn new(features: usize) -> Self {
        Self::with_targets(features, 1)
    }

    /// Empty moments for `features` features (plus intercept) and `targets` targets.
    pub fn with_targets(features: usize, targets: usize) -> Self {
        let p = features + 1;
        Self {
            p,
            targets,
            xtx: vec![0.0; p * p],
            xty: vec![0.0; p * targets],
            yty: vec![0.0; targets],
            n: 0,
            nz: Vec::with_capacity(p),
        }
    }

    /// Collects the non-zero features of `x` (with the intercept first) into the scratch list.
    #[inline]
    pub(super) fn non_zero(&mut self, x: &[f64]) -> Vec<(usize, f64)> {
        debug_assert_eq!(x.len() + 1, self.p);
        let mut nz = std::mem::take(&mut self.nz);
        nz.clear();
        nz.push((0, 1.0));
        nz.extend(x.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, v)| (i + 1, *v)));
        nz
    }

    /// Adds one observation (upper triangle only; mirrored on fit). The state indicators are
    /// one-hot, so only the few non-zero features are visited.
    #[inline]
    pub fn add(&mut self, x: &[f64], y: f64) {
        debug_assert_eq!(self.targets, 1);
        self.add_targets(x, &[y]);
    }

    /// Adds one observation with a value for every target.
    #[inline]
    pub fn add_targets(&mut self, x: &[f64], y: &[f64]) {
        debug_assert_eq!(y.len(), self.targets);
        let p = self.p;
        let nz = self.non_zero(x);
        for (k, &(i, a)) in nz.iter().enumerate() {
            let row = &mut self.xtx[i * p..(i + 1) * p];
            for &(j, b) in &nz[k..] {
                row[j] += a * b;
            }
            for (t, yt) in y.iter().enumerate() {
                self.xty[t * p + i] += a * yt;
            }
        }
        self.nz = nz;
        for (s, yt) in self.yty.iter_mut().zip(y) {
            *s += yt * yt;
        }
        self.n += 1;
    }

    /// Adds one observation of a single-target fit with weight `w` (weighted least squares:
    /// X'WX, X'Wy, y'Wy).
    #[inline]
    pub fn add_weighted(&mut self, x: &[f64], y: f64, w: f64) {
        debug_assert_eq!(self.targets, 1);
        let nz = self.non_zero(x);
        self.add_non_zero(&nz, y, w);
        self.nz = nz;
    }

    /// [`Self::add_weighted`] for an observation given by its non-zero parameters (index,
    /// value), intercept included, in increasing index order.
    #[inline]
    pub fn add_non_zero(&mut self, nz: &[(usize, f64)], y: f64, w: f64) {
        debug_assert_eq!(self.targets, 1);
        let p = self.p;
        for (k, &(i, a)) in nz.iter().enumerate() {
            let wa = w * a;
            let row = &mut self.xtx[i * p..(i + 1) * p];
            for &(j, b) in &nz[k..] {
                row[j] += wa * b;
            }
            self.xty[i] += wa * y;
        }
        self.yty[0] += w * y * y;
        self.n += 1;
    }

    pub fn merge(&mut self, other: &SpendMoments) {
        assert_eq!((self.p, self.targets), (other.p, other.targets));
        self.xtx.iter_mut().zip(&other.xtx).for_each(|(a, b)| *a += b);
        self.xty.iter_mut().zip(&other.xty).for_each(|(a, b)| *a += b);
        self.yty.iter_mut().zip(&other.yty).for_each(|(a, b)| *a += b);
        self.n += other.n;
    }

    /// The single-target moments of target `t`.
    pub fn target(&self, t: usize) -> SpendMoments {
        let p = self.p;
        SpendMoments {
            p,
            targets: 1,
            xtx: self.xtx.clone(),
            xty: self.xty[t * p..(t + 1) * p].to_vec(),
            yty: vec![self.yty[t]],
            n: self.n,
            nz: Vec::with_capacity(p),
        }
    }

    pub fn n(&self) -> u64 {
        self.n
    }
}
/// The normal equations of a (weighted) least-squares fit, solved.
pub(super) struct Normal {
    pub(super) p: usize,
    /// Symmetric X'X (full).
    pub(super) full: Vec<f64>,
    /// Parameters with a non-zero column; the others are fixed at 0.
    pub(super) keep: Vec<usize>,
    /// √diagonal of the kept columns (the system is solved on unit-diagonal scale).
    pub(super) scale: Vec<f64>,
    /// The scaled kept system.
    pub(super) a: Vec<f64>,
    pub(super) beta: Vec<f64>,
}

impl Normal {
    /// Least squares from moments: scales columns to unit diagonal, then solves the normal
    /// equations by Cholesky (with a tiny ridge for numerical safety, grown until the system is
    /// positive definite, so collinear or too few observations still give the
    /// minimum-norm-like ridge solution).
    pub(super) fn solve(m: &SpendMoments) -> Self {
        let p = m.p;
        let mut full = vec![0.0; p * p];
        for i in 0..p {
            for j in i..p {
                full[i * p + j] = m.xtx[i * p + j];
                full[j * p + i] = m.xtx[i * p + j];
            }
        }
        let keep: Vec<usize> = (0..p).filter(|&i| full[i * p + i] > 0.0).collect();
        let q = keep.len();
        let scale: Vec<f64> = keep.iter().map(|&i| full[i * p + i].sqrt()).collect();
        let mut a = vec![0.0; q * q];
        let mut b = vec![0.0; q];
        for (r, &i) in keep.iter().enumerate() {
            for (c, &j) in keep.iter().enumerate() {
                a[r * q + c] = full[i * p + j] / (scale[r] * scale[c]);
            }
            b[r] = m.xty[i] / scale[r];
        }
        let solution = solve_spd(&a, &b, q);
        let mut beta = vec![0.0; p];
        for (r, &i) in keep.iter().enumerate() {
            beta[i] = solution[r] / scale[r];
        }
        Self { p, full, keep, scale, a, beta }
    }

    /// SSE = y'y − 2β'X'y + β'X'Xβ.
    pub(super) fn sse(&self, m: &SpendMoments) -> f64 {
        let (p, beta, full) = (self.p, &self.beta, &self.full);
        let mut bxtxb = 0.0;
        for i in 0..p {
            for j in 0..p {
                bxtxb += beta[i] * full[i * p + j] * beta[j];
            }
        }
        let bxty: f64 = beta.iter().zip(&m.xty).map(|(b, v)| b * v).sum();
        (m.yty[0] - 2.0 * bxty + bxtxb).max(0.0)
    }

    /// factor · (X'X)⁻¹ over the kept parameters, zero elsewhere, from the scaled system.
    pub(super) fn covariance(&self, factor: f64) -> Vec<f64> {
        let (p, q) = (self.p, self.keep.len());
        let mut covariance = vec![0.0; p * p];
        let mut unit = vec![0.0; q];
        for (c, &j) in self.keep.iter().enumerate() {
            unit.fill(0.0);
            unit[c] = 1.0;
            let column = solve_spd(&self.a, &unit, q);
            for (r, &i) in self.keep.iter().enumerate() {
                covariance[i * p + j] = factor * column[r] / (self.scale[r] * self.scale[c]);
            }
        }
        covariance
    }

    pub(super) fn dropped(&self, names: &[String]) -> Vec<String> {
        (1..self.p).filter(|i| !self.keep.contains(i)).map(|i| names[i - 1].clone()).collect()
    }
}
/// Solves A x = b for a symmetric positive (semi)definite A (n × n, row-major) by Cholesky,
/// adding a ridge of 1e-10 (relative to a unit diagonal) and growing it if a pivot fails.
pub(super) fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut ridge = 1e-10;
    loop {
        if let Some(l) = cholesky(a, n, ridge) {
            // Forward then back substitution.
            let mut y = vec![0.0; n];
            for i in 0..n {
                let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
                y[i] = (b[i] - s) / l[i * n + i];
            }
            let mut x = vec![0.0; n];
            for i in (0..n).rev() {
                let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
                x[i] = (y[i] - s) / l[i * n + i];
            }
            return x;
        }
        ridge *= 100.0;
    }
}

pub(super) fn cholesky(a: &[f64], n: usize, ridge: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] + ridge - s;
                if d <= 1e-12 {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}
