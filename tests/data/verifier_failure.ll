; Parses, but fails the LLVM verifier: %x is used in a block it does not
; dominate (it is defined in an unreachable block).
define i32 @uses_before_definition(i32 %a) {
entry:
  br label %exit
exit:
  ret i32 %x
unreachable_block:
  %x = add i32 %a, 1
  br label %exit
}
