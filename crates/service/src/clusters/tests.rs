use super::*;
use crate::domain::Regroup;
use crate::domain::new_id;
use crate::domain::similarity::l2_normalize;

fn unit(v: &[f32]) -> Vec<f32> {
    let mut v = v.to_vec();
    assert!(l2_normalize(&mut v));
    v
}

/// Plans, "writes" and applies one face; its id and placement.
fn arrive(c: &mut Clusters, x: &[f32]) -> (String, Placement) {
    let p = c.plan(&[x]).remove(0);
    let id = new_id();
    assert!(c.apply(&id, &p, x, None));
    (id, p)
}

/// A unit vector at `cos` similarity to `a` (both in the x-y plane, then `z` out of it).
fn at_angle(cos: f32, z: f32) -> Vec<f32> {
    unit(&[cos, (1.0 - cos * cos).sqrt(), z, 0.0])
}

#[test]
fn faces_of_two_people_arriving_interleaved_make_two_clusters() {
    let mut c = Clusters::new(4, 0.75);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..6 {
        let wobble = 0.05 * i as f32;
        a.push(arrive(&mut c, &unit(&[1.0, wobble, 0.0, 0.0])).0);
        b.push(arrive(&mut c, &unit(&[0.0, 0.0, 1.0, wobble])).0);
    }
    assert_eq!(c.len(), 2);
    assert_eq!(c.faces(), 12);
    let ranked = c.ranked(2);
    assert_eq!(ranked.iter().map(|r| r.0).collect::<Vec<_>>(), [6, 6]);
    let mut first = c.faces_of(&ranked[0].1);
    first.sort();
    let mut expect_a = a.clone();
    expect_a.sort();
    let mut expect_b = b.clone();
    expect_b.sort();
    assert!(first == expect_a || first == expect_b, "a cluster mixes the two people");
    assert_eq!(c.cluster_of(&a[0]), c.cluster_of(&a[5]));
    assert_ne!(c.cluster_of(&a[0]), c.cluster_of(&b[0]));
}

#[test]
fn a_face_below_the_threshold_to_every_cluster_starts_its_own() {
    let mut c = Clusters::new(4, 0.75);
    let (_, p1) = arrive(&mut c, &unit(&[1.0, 0.0, 0.0, 0.0]));
    let (_, p2) = arrive(&mut c, &at_angle(0.74, 0.0));
    assert_ne!(p1.cluster, p2.cluster);
    let (_, p3) = arrive(&mut c, &at_angle(0.72, 0.0));
    // Nearly the second face: joins it; the pair averages (0.74 + 0.72) / 2
    // with the first, below 0.75: no merge.
    assert_eq!(p3.cluster, p2.cluster);
    assert!(p3.steps.is_empty());
}

#[test]
fn a_grown_cluster_absorbs_the_clusters_its_average_now_reaches() {
    let mut c = Clusters::new(4, 0.75);
    let a = unit(&[1.0, 0.0, 0.0, 0.0]);
    let b = at_angle(0.74, 0.0);
    let (fa, pa) = arrive(&mut c, &a);
    let (fb, pb) = arrive(&mut c, &b);
    assert_ne!(pa.cluster, pb.cluster);
    // Closer to a (joins it), and 0.8 to b: the pair {a, x} averages
    // (0.74 + 0.8) / 2 = 0.77 with b, at or above 0.75: one cluster.
    let x = {
        // x = p a + q b' (b' orthogonal to a in the plane of a and b), with x·b = 0.8.
        let sin_ab = (1.0f32 - 0.74 * 0.74).sqrt();
        let q = (0.8 - 0.74 * 0.95) / sin_ab;
        unit(&[0.95, q, (1.0 - 0.95f32 * 0.95 - q * q).max(0.0).sqrt(), 0.0])
    };
    assert!(dot(&x, &a) > dot(&x, &b) && dot(&x, &b) >= 0.79);
    let (fx, px) = arrive(&mut c, &x);
    assert_eq!(px.steps.len(), 1, "{px:?}");
    assert_eq!(c.len(), 1);
    for f in [&fa, &fb, &fx] {
        assert_eq!(c.cluster_of(f).as_deref(), Some(px.cluster.as_str()));
    }
    // The larger cluster ({a, x}) kept its id.
    assert_eq!(px.cluster, pa.cluster);
    assert_eq!(px.steps[0], Regroup::Merge { from: pb.cluster.clone(), into: pa.cluster.clone() });
}

#[test]
fn a_plan_sees_the_faces_planned_before_it() {
    let c = Clusters::new(4, 0.75);
    let x = unit(&[1.0, 0.1, 0.0, 0.0]);
    let y = unit(&[0.0, 1.0, 0.0, 0.0]);
    let plan = c.plan(&[&x, &x, &y]);
    assert_eq!(plan[0].cluster, plan[1].cluster);
    assert_ne!(plan[0].cluster, plan[2].cluster);
}

#[test]
fn removing_and_relabelling_keep_sums_and_slots_right() {
    let mut c = Clusters::new(4, 0.75);
    let x = unit(&[1.0, 0.0, 0.0, 0.0]);
    let (f1, p) = arrive(&mut c, &x);
    let (f2, _) = arrive(&mut c, &x);
    assert_eq!(c.faces_of(&p.cluster).len(), 2);
    let other = new_id();
    assert!(c.insert(&new_id(), &other, &unit(&[0.0, 1.0, 0.0, 0.0]), Some("ext")));
    c.relabel(&other, &p.cluster);
    assert_eq!(c.len(), 1);
    assert_eq!(c.faces_of(&p.cluster).len(), 3);
    assert!(c.remove(&f1) && c.remove(&f2) && !c.remove(&f1));
    let view = c.view(&p.cluster).unwrap();
    assert_eq!(view.faces[0].1.as_deref(), Some("ext"));
    assert!((view.mean[1] - 1.0).abs() < 1e-5, "the sum lost what was removed: {:?}", view.mean);
    // Slots are reused once freed.
    let slots = c.ids.len();
    for f in view.faces {
        c.remove(&f.0);
    }
    assert!(c.is_empty() && c.faces() == 0);
    arrive(&mut c, &x);
    assert_eq!(c.ids.len(), slots);
    assert!(!c.insert("not an id", &new_id(), &x, None));
    assert!(!c.insert(&new_id(), &new_id(), &[1.0], None));
}

#[test]
fn a_view_gives_cohesion_and_the_most_central_face() {
    let mut c = Clusters::new(4, 0.5);
    let centre = unit(&[1.0, 0.0, 0.0, 0.0]);
    let (fc, p) = arrive(&mut c, &centre);
    arrive(&mut c, &unit(&[1.0, 0.5, 0.0, 0.0]));
    arrive(&mut c, &unit(&[1.0, -0.5, 0.0, 0.0]));
    let v = c.view(&p.cluster).unwrap();
    assert_eq!(v.representative, fc);
    let (a, b) = (unit(&[1.0, 0.5, 0.0, 0.0]), unit(&[1.0, -0.5, 0.0, 0.0]));
    let pairs = (dot(&centre, &a) + dot(&centre, &b) + dot(&a, &b)) / 3.0;
    assert!((v.cohesion - pairs).abs() < 1e-5, "{} vs {pairs}", v.cohesion);
    assert!(c.view(&new_id()).is_none());
}

/// `a`, then `x` (0.8 to `a`: joins it), then `b` (close to `a`, 0.59 to
/// `x`: joins the pair on average, 0.78), after which `x` averages 0.70 to
/// the rest of its cluster: it leaves.
fn misfit_story() -> [Vec<f32>; 3] {
    [unit(&[1.0, 0.0, 0.0, 0.0]), unit(&[0.8, 0.6, 0.0, 0.0]), unit(&[1.0, -0.3, 0.0, 0.0])]
}

#[test]
fn a_face_that_no_longer_fits_its_cluster_on_average_leaves_it() {
    let [a, x, b] = misfit_story();
    let mut c = Clusters::new(4, 0.75);
    let (fa, pa) = arrive(&mut c, &a);
    let (fx, px) = arrive(&mut c, &x);
    assert_eq!(px.cluster, pa.cluster, "x joins a");
    let (fb, pb) = arrive(&mut c, &b);
    assert_eq!(pb.cluster, pa.cluster);
    let Some(Regroup::Move { face, to }) = pb.steps.first() else { panic!("x did not leave: {pb:?}") };
    assert_eq!((face, pb.steps.len()), (&fx, 1));
    assert_eq!(c.cluster_of(&fx).as_ref(), Some(to));
    assert_ne!(c.cluster_of(&fx), c.cluster_of(&fa));
    assert_eq!(c.cluster_of(&fb), c.cluster_of(&fa));
    assert_eq!((c.len(), c.faces()), (2, 3));
    let view = c.view(&pa.cluster).unwrap();
    assert!((view.cohesion - dot(&a, &b)).abs() < 1e-5, "the sum still holds x: {}", view.cohesion);
}

#[test]
fn a_misfit_of_the_same_plan_is_written_where_it_ends() {
    let [a, x, b] = misfit_story();
    let mut c = Clusters::new(4, 0.75);
    let plan = c.plan(&[&a, &x, &b]);
    assert_eq!(plan[0].cluster, plan[2].cluster);
    assert_ne!(plan[1].cluster, plan[0].cluster, "x is written where it ends: {plan:?}");
    assert!(plan.iter().all(|p| p.steps.is_empty()), "{plan:?}");
    let ids: Vec<String> = (0..3).map(|_| new_id()).collect();
    for ((id, p), v) in ids.iter().zip(&plan).zip([&a, &x, &b]) {
        assert!(c.apply(id, p, v, None));
    }
    assert_eq!((c.len(), c.faces()), (2, 3));
    assert_eq!(c.cluster_of(&ids[1]).as_deref(), Some(plan[1].cluster.as_str()));
}
