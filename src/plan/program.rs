//! The persistent decode program: the plan's steps (all but sampling) cut into instructions and
//! assigned to the resident blocks ("workers") of one persistent kernel ahead of time
//! (`kernels/persistent.cu` runs it). This module is the target-independent half: which steps
//! must wait for which (read/write overlap of their arena slots, transitively reduced), the
//! static assignment of each step's tasks to workers, the proof that the program cannot deadlock,
//! and its listing. How many tasks a step has is the CUDA backend's business
//! (`exec::cuda::persistent`), which calls [`Program::schedule`].

use super::{Plan, Region, Slot};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// What the scheduler needs of a step: its tasks and the weight bytes each streams.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepWork {
    pub tasks: u32,
    pub bytes_per_task: u64,
}

/// Tasks `begin..end` of one step, run by one worker after it has seen every listed wait met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub step: u32,
    pub begin: u32,
    pub end: u32,
    /// This instruction's waits are `waits[wait_first..wait_first + wait_count]`.
    pub wait_first: u32,
    pub wait_count: u32,
}

/// "Step `step` has signalled `count` times": every one of its instructions is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub step: u32,
    pub count: u32,
}

/// Longest wait list the kernel decodes (8 bits of the packed instruction word).
pub const MAX_WAITS: u32 = 255;
/// Most waits in a program (the first wait's index has the other 24 bits).
pub const MAX_WAIT_ENTRIES: usize = 1 << 24;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// The GPU's SMs it was scheduled for, and the blocks resident on each.
    pub sms: u32,
    pub workers_per_sm: u32,
    /// Tasks of every plan step (0: not in the program, e.g. sampling, which runs after it).
    pub tasks: Vec<u32>,
    /// Weight bytes a task of each step streams.
    pub bytes_per_task: Vec<u64>,
    /// Worker w runs `instructions[starts[w]..starts[w + 1]]`, in order.
    pub instructions: Vec<Instruction>,
    pub starts: Vec<u32>,
    pub waits: Vec<Wait>,
}

/// Whether two arena slots share a byte.
fn overlap(a: &Slot, b: &Slot) -> bool {
    a.region == Region::Arena && b.region == Region::Arena && a.offset < b.offset + b.bytes() && b.offset < a.offset + a.bytes()
}

/// For each step in the program (`in_program`), the earlier steps it must wait for: those that
/// write what it reads or writes, or read what it writes (the arena reuses memory), less those
/// already implied by another dependency (a step signals only after its own waits were met).
pub fn dependencies(plan: &Plan, in_program: &[bool]) -> Vec<Vec<usize>> {
    let n = plan.steps.len();
    let mut reach: Vec<Vec<bool>> = vec![vec![false; n]; n];
    let mut direct: Vec<Vec<usize>> = vec![Vec::new(); n];
    for j in (0..n).filter(|&j| in_program[j]) {
        let (sj, mut deps) = (&plan.steps[j], Vec::new());
        for i in (0..j).filter(|&i| in_program[i]) {
            let si = &plan.steps[i];
            let conflict = si.outputs.iter().any(|w| sj.inputs.iter().chain(&sj.outputs).any(|s| overlap(w, s)))
                || si.inputs.iter().any(|r| sj.outputs.iter().any(|w| overlap(r, w)));
            if conflict {
                deps.push(i);
            }
        }
        for &i in &deps {
            reach[j][i] = true;
            let (before, rest) = reach.split_at_mut(j);
            for (r, &via) in rest[0].iter_mut().zip(&before[i]) {
                *r |= via;
            }
        }
        direct[j] = deps.iter().copied().filter(|&i| !deps.iter().any(|&k| k != i && reach[k][i])).collect();
    }
    direct
}

impl Program {
    /// Spreads every step's tasks over all workers in even contiguous ranges (so each worker
    /// streams the same share of every weight), rotating steps with fewer tasks than workers so
    /// their work does not always land on the same workers; waits from [`dependencies`].
    pub fn schedule(plan: &Plan, work: &[Option<StepWork>], sms: u32, workers_per_sm: u32) -> Result<Program> {
        let workers = (sms * workers_per_sm) as usize;
        if workers == 0 || work.len() != plan.steps.len() {
            return Err(Error::Input("persistent schedule: no workers, or work not given for every step".into()));
        }
        let in_program: Vec<bool> = work.iter().map(Option::is_some).collect();
        let deps = dependencies(plan, &in_program);
        let tasks: Vec<u32> = work.iter().map(|w| w.map_or(0, |w| w.tasks)).collect();
        let mut per_worker: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); workers];
        let mut rotation = 0usize;
        for (step, w) in work.iter().enumerate() {
            let Some(w) = w else { continue };
            let t = w.tasks as usize;
            for c in 0..workers {
                let (begin, end) = (t * c / workers, t * (c + 1) / workers);
                if begin < end {
                    per_worker[(c + rotation) % workers].push((step as u32, begin as u32, end as u32));
                }
            }
            if t < workers {
                rotation += t.max(1);
            }
        }
        let count = |step: usize| per_worker.iter().flatten().filter(|i| i.0 as usize == step).count() as u32;
        let counts: Vec<u32> = (0..plan.steps.len()).map(count).collect();
        let mut waits = Vec::new();
        let mut wait_of = vec![(0u32, 0u32); plan.steps.len()];
        for (step, d) in deps.iter().enumerate().filter(|(s, _)| in_program[*s]) {
            if d.len() > MAX_WAITS as usize {
                return Err(Error::Unsupported(format!("step {} waits on {} steps (at most {MAX_WAITS})", plan.steps[step].label, d.len())));
            }
            wait_of[step] = (waits.len() as u32, d.len() as u32);
            waits.extend(d.iter().map(|&i| Wait { step: i as u32, count: counts[i] }));
        }
        let mut instructions = Vec::new();
        let mut starts = vec![0u32];
        for list in &per_worker {
            for &(step, begin, end) in list {
                let (wait_first, wait_count) = wait_of[step as usize];
                instructions.push(Instruction { step, begin, end, wait_first, wait_count });
            }
            starts.push(instructions.len() as u32);
        }
        let bytes_per_task = work.iter().map(|w| w.map_or(0, |w| w.bytes_per_task)).collect();
        let program = Program { sms, workers_per_sm, tasks, bytes_per_task, instructions, starts, waits };
        program.check(plan.steps.len())?;
        Ok(program)
    }

    pub fn workers(&self) -> u32 {
        self.sms.saturating_mul(self.workers_per_sm)
    }

    fn worker(&self, w: usize) -> &[Instruction] {
        &self.instructions[self.starts[w] as usize..self.starts[w + 1] as usize]
    }

    /// Proves the program sound for a plan of `steps` steps, so a runtime need not trust the
    /// file: every worker's instructions are in step order and every wait names an earlier step,
    /// so the lowest unfinished instruction can always run (no deadlock with every worker
    /// resident); every wait's count is exactly its step's number of instructions (each counter
    /// is reached, and only when the step is done); the instructions of each step cover its
    /// tasks exactly once.
    pub fn check(&self, steps: usize) -> Result<()> {
        let bad = |msg: String| Error::BadPlan { path: "plan".into(), msg: format!("persistent program: {msg}") };
        let workers = self.workers() as usize;
        if self.tasks.len() != steps || self.bytes_per_task.len() != steps || self.starts.len() != workers + 1 {
            return Err(bad(format!("sized for {} steps and {} workers", self.tasks.len(), self.starts.len().saturating_sub(1))));
        }
        if self.waits.len() > MAX_WAIT_ENTRIES || self.instructions.iter().any(|i| i.wait_count > MAX_WAITS) {
            return Err(bad(format!("more waits than the kernel can index ({} of at most {MAX_WAIT_ENTRIES}, at most {MAX_WAITS} each)", self.waits.len())));
        }
        if self.starts[0] != 0 || self.starts.windows(2).any(|w| w[0] > w[1]) || self.starts[workers] as usize != self.instructions.len() {
            return Err(bad("worker ranges do not partition the instructions".into()));
        }
        let mut counts = vec![0u32; steps];
        let mut covered: Vec<Vec<(u32, u32)>> = vec![Vec::new(); steps];
        for w in 0..workers {
            let mut last_step = None;
            for ins in self.worker(w) {
                let s = ins.step as usize;
                if s >= steps || ins.begin >= ins.end || ins.end > self.tasks[s] {
                    return Err(bad(format!("worker {w}: instruction {ins:?} is outside its step")));
                }
                if last_step.is_some_and(|l| l >= ins.step) {
                    return Err(bad(format!("worker {w}: step {} after step {}", ins.step, last_step.unwrap_or(0))));
                }
                last_step = Some(ins.step);
                counts[s] += 1;
                covered[s].push((ins.begin, ins.end));
            }
        }
        for (s, ranges) in covered.iter_mut().enumerate() {
            ranges.sort_unstable();
            let mut at = 0;
            for &(b, e) in ranges.iter() {
                if b != at {
                    return Err(bad(format!("step {s}: tasks from {at} are covered {}", if b < at { "twice" } else { "by none" })));
                }
                at = e;
            }
            if at != self.tasks[s] {
                return Err(bad(format!("step {s}: {} of {} tasks covered", at, self.tasks[s])));
            }
        }
        for ins in &self.instructions {
            let (first, n) = (ins.wait_first as usize, ins.wait_count as usize);
            let waits = self.waits.get(first..first + n).ok_or_else(|| bad(format!("waits of {ins:?} out of range")))?;
            if let Some(w) = waits.iter().find(|w| w.step >= ins.step || w.count != counts[w.step as usize]) {
                return Err(bad(format!("step {} waits for step {} to signal {} times", ins.step, w.step, w.count)));
            }
        }
        Ok(())
    }

    /// Weight bytes each worker streams.
    pub fn bytes_per_worker(&self) -> Vec<u64> {
        (0..self.workers() as usize).map(|w| self.worker(w).iter().map(|i| (i.end - i.begin) as u64 * self.bytes_per_task[i.step as usize]).sum()).collect()
    }

    /// The listing `llmc inspect` prints: the balance, then each step's tasks, instructions and waits.
    pub fn text(&self, plan: &Plan) -> String {
        let mut s = String::new();
        let bytes = self.bytes_per_worker();
        let (max, total) = (bytes.iter().copied().max().unwrap_or(0), bytes.iter().sum::<u64>());
        let mean = total as f64 / bytes.len().max(1) as f64;
        let _ = writeln!(
            s,
            "persistent decode: {} workers ({} per SM x {} SMs), {} instructions, {} waits; weight bytes per worker max {} mean {:.0} (max/mean {:.3})",
            self.workers(),
            self.workers_per_sm,
            self.sms,
            self.instructions.len(),
            self.waits.len(),
            max,
            mean,
            max as f64 / mean.max(1.0)
        );
        for (i, step) in plan.steps.iter().enumerate().filter(|(i, _)| self.tasks[*i] > 0) {
            let ins: Vec<&Instruction> = self.instructions.iter().filter(|x| x.step as usize == i).collect();
            let waits = ins.first().filter(|x| x.wait_count > 0).map_or("none".to_string(), |x| {
                let w = &self.waits[x.wait_first as usize..(x.wait_first + x.wait_count) as usize];
                w.iter().map(|w| format!("%{}x{}", w.step, w.count)).collect::<Vec<_>>().join(" ")
            });
            let _ = writeln!(s, "  %{i:<4} {:<16} {:>7} tasks in {:>3} instructions, waits {waits}", step.op.kind(), self.tasks[i], ins.len());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::ModelConfig;

    fn plan() -> Plan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/configs/qwen2.5-1.5b.json");
        let config = ModelConfig::from_file(&path).expect("config");
        let tokenizer = crate::load::TokenizerSpec { json: String::new(), chat_template: None, eos_ids: vec![], bos_token: None, eos_token: None };
        crate::plan::build(&config, tokenizer, 256, crate::plan::Target::Cuda { sm: 90 }).expect("plan")
    }

    fn uniform_work(plan: &Plan, tasks: u32) -> Vec<Option<StepWork>> {
        plan.steps.iter().map(|s| (s.op.kind() != "sample").then_some(StepWork { tasks, bytes_per_task: 1 })).collect()
    }

    #[test]
    fn each_layer_waits_only_on_its_producer() {
        let plan = plan();
        let in_program: Vec<bool> = plan.steps.iter().map(|s| s.op.kind() != "sample").collect();
        let deps = dependencies(&plan, &in_program);
        // embedding, then per layer qkv -> attention -> o_proj -> gate_up -> down: a chain, and
        // every other conflict (the residual read by o_proj, reused arena bytes) is implied.
        for (j, d) in deps.iter().enumerate().skip(1).filter(|(j, _)| in_program[*j]) {
            assert_eq!(d, &vec![j - 1], "step {j} ({}) waits on {d:?}", plan.steps[j].label);
        }
        assert!(deps[0].is_empty());
    }

    #[test]
    fn dependencies_keep_a_write_after_read() {
        // Layer 0's gate_up output reuses the bytes of %0 (the embedding), which qkv (step 1)
        // reads and does not write back. With attention and o_proj out of the program, nothing
        // else orders gate_up after that reader: the dependency must come from the overlap.
        let plan = plan();
        let (qkv, gate_up) = (&plan.steps[1], &plan.steps[4]);
        assert!(overlap(&qkv.inputs[0], &gate_up.outputs[0]), "the arena no longer reuses %0 for gate_up: pick another pair");
        assert!(!qkv.outputs.iter().any(|o| gate_up.inputs.iter().any(|i| overlap(o, i))), "gate_up reads what qkv wrote");
        let mut in_program: Vec<bool> = plan.steps.iter().map(|s| s.op.kind() != "sample").collect();
        in_program[2] = false;
        in_program[3] = false;
        let deps = dependencies(&plan, &in_program);
        assert_eq!(deps[4], vec![1], "gate_up waits on {:?}", deps[4]);
    }

    #[test]
    fn schedule_is_sound_and_balanced() {
        let plan = plan();
        for (sms, tasks) in [(132, 1000), (4, 3), (7, 64)] {
            let program = Program::schedule(&plan, &uniform_work(&plan, tasks), sms, 2).expect("schedule");
            program.check(plan.steps.len()).expect("sound");
            let bytes = program.bytes_per_worker();
            let (min, max) = (*bytes.iter().min().unwrap(), *bytes.iter().max().unwrap());
            let steps = plan.steps.len() as u64 - 1;
            // Each step gives a worker floor or ceil of tasks / workers.
            assert!(max - min <= steps, "sms {sms} tasks {tasks}: bytes per worker {min}..{max}");
        }
    }

    #[test]
    fn check_refuses_what_could_deadlock_or_lose_work() {
        let plan = plan();
        let good = Program::schedule(&plan, &uniform_work(&plan, 300), 4, 2).expect("schedule");
        let n = plan.steps.len();
        let mut p = good.clone();
        p.waits[0].count += 1; // a count never reached
        assert!(p.check(n).unwrap_err().to_string().contains("signal"));
        let mut p = good.clone();
        let i = p.instructions.iter().position(|x| x.wait_count > 0).unwrap();
        let w = p.instructions[i].wait_first as usize;
        p.waits[w].step = p.instructions[i].step; // waits on itself
        assert!(p.check(n).is_err());
        let mut p = good.clone();
        p.instructions[0].wait_count = MAX_WAITS + 1; // more than the kernel decodes
        assert!(p.check(n).unwrap_err().to_string().contains("index"));
        let mut p = good.clone();
        p.instructions.swap(0, 1); // a worker's steps out of order
        assert!(p.check(n).is_err());
        let mut p = good.clone();
        p.instructions[0].end -= 1; // a task nobody runs
        assert!(p.check(n).unwrap_err().to_string().contains("covered"));
        assert!(good.check(n).is_ok());
    }
}
