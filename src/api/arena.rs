//! One bump arena per worker thread for ingest requests: a request's unescaped text, labels
//! and decoded views go into it, and it is reset, not freed, after the request. A fresh
//! arena per request asked the allocator (and, past glibc's mmap threshold, the kernel) for
//! new megabytes and faulted them in every time; a kept one is already warm.

use std::cell::Cell;

use bumpalo::Bump;

/// An arena that grew past this is freed after its request rather than kept, so a rare huge
/// body does not pin its memory to every worker thread for good.
const KEEP_AT_MOST: usize = 16 << 20;

thread_local! {
    static ARENA: Cell<Option<Bump>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's arena, empty. `f` must not await: the arena is the thread's.
pub fn with<R>(f: impl FnOnce(&Bump) -> R) -> R {
    let mut bump = ARENA.take().unwrap_or_default();
    let result = f(&bump);
    bump.reset();
    if bump.allocated_bytes() <= KEEP_AT_MOST {
        ARENA.set(Some(bump));
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_arena_is_kept_warm_and_handed_out_empty() {
        let first = super::with(|bump| {
            bump.alloc_slice_fill_copy(1 << 20, 0u8);
            bump.allocated_bytes()
        });
        super::with(|bump| {
            assert!(bump.allocated_bytes() >= 1 << 20 && bump.allocated_bytes() <= first, "the big chunk is kept");
            // Empty: a new allocation fits in the kept chunk without growing the arena.
            let before = bump.allocated_bytes();
            bump.alloc_slice_fill_copy(1 << 19, 1u8);
            assert_eq!(bump.allocated_bytes(), before);
        });
        // One that grew past the cap is not kept.
        super::with(|bump| bump.alloc_slice_fill_copy(super::KEEP_AT_MOST + 1, 0u8).len());
        super::with(|bump| assert_eq!(bump.allocated_bytes(), 0, "a fresh arena after a huge request"));
    }
}
