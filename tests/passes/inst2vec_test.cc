// The inst2vec statements (passes/llvm/inst2vec.h): the paper's rules on
// hand-written statements, and a hand-written module's statements, each
// expected string written by hand from the rules.
#include <gtest/gtest.h>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/SourceMgr.h>

#include "passes/llvm/inst2vec.h"

namespace forkgym::passes {
namespace {

struct Normalised {
  const char* statement;
  const char* expected;
};

// Identifiers, immediates, strings; metadata and attribute groups cut.
constexpr Normalised kStatements[] = {
    {"%5 = load i32, i32* %3, align 4, !tbaa !7", "<%ID> = load i32, i32* <%ID>, align 4"},
    {"store i32 0, i32* %retval, align 4", "store i32 <INT>, i32* <%ID>, align 4"},
    {"%x = add nsw i32 %a, -1", "<%ID> = add nsw i32 <%ID>, <INT>"},
    {"%7 = fadd double %6, 1.000000e+00", "<%ID> = fadd double <%ID>, <FLOAT>"},
    {"%8 = fmul float %x, 0x3FF0000000000000", "<%ID> = fmul float <%ID>, <FLOAT>"},
    // The string goes with its quotes; the space before it stays (the paper's " <STRING>").
    {"@.str = private unnamed_addr constant [6 x i8] c\"hi %d\\0A\\00\", align 1",
     "<@ID> = private unnamed_addr constant [6 x i8]  <STRING>, align 1"},
    // The value opening a phi pair follows "[ ": kept, as the paper keeps it.
    {"%r = phi i32 [ 0, %entry ], [ %y, %pos ]", "<%ID> = phi i32 [ 0, <%ID> ], [ <%ID>, <%ID> ]"},
    // extractelement: integers kept, the index's type abstracted.
    {"%e = extractelement <4 x i32> %v, i32 1", "<%ID> = extractelement <4 x i32> <%ID>, <TYP> 1"},
    {"%s = extractvalue { i32, i64 } %agg, 1", "<%ID> = extractvalue { i32, i64 } <%ID>, 1"},
    {"call void @llvm.memset.p0.p0.i64(i8* %p, i8 0, i64 16, i1 false) #3",
     "call void <@ID>(i8* <%ID>, i8 <INT>, i64 <INT>, i1 false)"},
    {"%3 = getelementptr inbounds [4 x i8], [4 x i8]* @.str, i64 0, i64 0",
     "<%ID> = getelementptr inbounds [4 x i8], [4 x i8]* <@ID>, i64 <INT>, i64 <INT>"},
    {"%\"a b\" = alloca i32, align 4", "<%ID> = alloca i32, align 4"},
    {"ret void", "ret void"},
};

TEST(Inst2vec, NormalisesHandWrittenStatementsAsThePaperDoes) {
  for (const Normalised& row : kStatements) {
    EXPECT_EQ(normaliseInst2vecStatement(row.statement), row.expected) << row.statement;
  }
}

constexpr const char* kModule = R"(
%struct.pair = type { i32, ptr }

@g = global i32 7, align 4
@s = private constant [3 x i8] c"hi\00", align 1

declare i32 @printf(ptr, ...)

define i32 @f(ptr %p, i32 %n) {
entry:
  %a = alloca %struct.pair, align 8
  %f = getelementptr inbounds %struct.pair, ptr %a, i32 0, i32 0
  store i32 %n, ptr %f, align 4
  %v = load i32, ptr @g, align 4
  %c = icmp sgt i32 %v, 0
  br i1 %c, label %yes, label %no
yes:
  %r = call i32 (ptr, ...) @printf(ptr @s, i32 %v)
  br label %no
no:
  %q = load ptr, ptr %p, align 8
  switch i32 %n, label %out [
    i32 1, label %out
    i32 2, label %out
  ]
out:
  ret i32 %n
}
)";

std::unique_ptr<llvm::Module> parse(llvm::LLVMContext& context, const char* text) {
  llvm::SMDiagnostic diagnostic;
  auto module = llvm::parseAssemblyString(text, diagnostic, context);
  EXPECT_TRUE(module) << diagnostic.getMessage().str();
  return module;
}

TEST(Inst2vec, WritesEachStatementWithTypedPointersWhereTheIrRevealsThem) {
  llvm::LLVMContext context;
  auto module = parse(context, kModule);
  ASSERT_TRUE(module);
  const std::vector<std::string> expected = {
      "<@ID> = global i32 <INT>, align 4",
      "<@ID> = private constant [3 x i8]  <STRING>, align 1",
      "define i32 <@ID>(ptr <%ID>, i32 <%ID>)",  // a declaration is no statement
      "<LABEL>:",
      "<%ID> = alloca { i32, ptr }, align 8",  // the struct inlined; its field's pointee unknown
      "<%ID> = getelementptr inbounds { i32, ptr }, { i32, ptr }* <%ID>, i32 <INT>, i32 <INT>",
      "store i32 <%ID>, i32* <%ID>, align 4",
      "<%ID> = load i32, i32* <@ID>, align 4",
      "<%ID> = icmp sgt i32 <%ID>, <INT>",
      "br i1 <%ID>, label <%ID>, label <%ID>",
      "<LABEL>: ; preds = <LABEL>",
      // The global's pointee is its array; the varargs signature's ptr is unknown.
      "<%ID> = call i32 (ptr, ...) <@ID>([3 x i8]* <@ID>, i32 <%ID>)",
      "br label <%ID>",
      "<LABEL>: ; preds = <LABEL>, <LABEL>",
      "<%ID> = load ptr, ptr* <%ID>, align 8",  // a loaded pointer's pointee is unknown
      "switch i32 <%ID>, label <%ID> [\n i32 <INT>, label <%ID>\n i32 <INT>, label <%ID>]",
      "<LABEL>: ; preds = <LABEL>, <LABEL>, <LABEL>",
      "ret i32 <%ID>",
  };
  auto statements = inst2vecStatements(*module);
  ASSERT_TRUE(statements.ok()) << statements.error().message;
  EXPECT_EQ(*statements, expected);
}

// Locations holding pointers: typed by what is stored into them, when every
// store agrees (null says nothing); loads from them by that.
constexpr const char* kPointersToPointers = R"(
@x = global i32 0, align 4
@px = global ptr @x, align 8

define void @g() {
  %a = alloca i32, align 4
  %p = alloca ptr, align 8
  %pp = alloca ptr, align 8
  %arr = alloca [2 x ptr], align 16
  store ptr %a, ptr %p, align 8
  store ptr %p, ptr %pp, align 8
  %l = load ptr, ptr %pp, align 8
  %m = load ptr, ptr %l, align 8
  store i32 1, ptr %m, align 4
  store ptr null, ptr %p, align 8
  %q = load ptr, ptr @px, align 8
  %e = getelementptr inbounds [2 x ptr], ptr %arr, i64 0, i64 1
  store ptr %q, ptr %e, align 8
  %r = alloca ptr, align 8
  store ptr %a, ptr %r, align 8
  store ptr %e, ptr %r, align 8
  ret void
}
)";

TEST(Inst2vec, ALocationHoldingPointersIsTypedByWhatIsStoredIntoIt) {
  llvm::LLVMContext context;
  auto module = parse(context, kPointersToPointers);
  ASSERT_TRUE(module);
  const std::vector<std::string> expected = {
      "<@ID> = global i32 <INT>, align 4",
      "<@ID> = global i32* <@ID>, align 8",  // its initializer says
      "define void <@ID>()",
      "<%ID> = alloca i32, align 4",
      "<%ID> = alloca i32*, align 8",   // %p: holds %a
      "<%ID> = alloca i32**, align 8",  // %pp: holds %p
      "<%ID> = alloca [2 x ptr], align 16",
      "store i32* <%ID>, i32** <%ID>, align 8",
      "store i32** <%ID>, i32*** <%ID>, align 8",
      "<%ID> = load i32**, i32*** <%ID>, align 8",
      "<%ID> = load i32*, i32** <%ID>, align 8",
      "store i32 <INT>, i32* <%ID>, align 4",
      "store i32* null, i32** <%ID>, align 8",  // null takes the location's type
      "<%ID> = load i32*, i32** <@ID>, align 8",
      // An array's element of type ptr: what it holds is not inferred.
      "<%ID> = getelementptr inbounds [2 x ptr], [2 x ptr]* <%ID>, i64 <INT>, i64 <INT>",
      "store i32* <%ID>, i32** <%ID>, align 8",  // typed by the value stored
      "<%ID> = alloca ptr, align 8",             // %r: its two stores disagree
      "store i32* <%ID>, i32** <%ID>, align 8",
      "store ptr* <%ID>, ptr** <%ID>, align 8",
      "ret void",
  };
  auto statements = inst2vecStatements(*module);
  ASSERT_TRUE(statements.ok()) << statements.error().message;
  EXPECT_EQ(*statements, expected);
}

TEST(Inst2vec, OpaquePointersAreLlvmsOwnText) {
  llvm::LLVMContext context;
  auto module = parse(context, kModule);
  ASSERT_TRUE(module);
  auto opaque = inst2vecStatements(*module, Inst2vecPointers::Opaque);
  ASSERT_TRUE(opaque.ok());
  const std::vector<std::string>& statements = *opaque;
  ASSERT_EQ(statements.size(), 18u);
  EXPECT_EQ(statements[5], "<%ID> = getelementptr inbounds { i32, ptr }, ptr <%ID>, i32 <INT>, i32 <INT>");
  EXPECT_EQ(statements[7], "<%ID> = load i32, ptr <@ID>, align 4");
}

TEST(Inst2vec, AStructWhoseInlinedTextExplodesIsRefusedByName) {
  // %t0 = {}, %tN = { %tN-1, %tN-1 }: size zero, 2^40 fields once inlined.
  std::string text = "%t0 = type {}\n";
  for (int i = 1; i <= 40; ++i) {
    text += "%t" + std::to_string(i) + " = type { %t" + std::to_string(i - 1) + ", %t" + std::to_string(i - 1) +
            " }\n";
  }
  text += "define void @f() {\n  %a = alloca %t40, align 1\n  ret void\n}\n";
  llvm::LLVMContext context;
  auto module = parse(context, text.c_str());
  ASSERT_TRUE(module);
  auto statements = inst2vecStatements(*module);
  ASSERT_FALSE(statements.ok());
  EXPECT_EQ(statements.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(statements.error().message.find("the module's type t"), std::string::npos) << statements.error().message;
  EXPECT_NE(statements.error().message.find("more than 1048576 characters"), std::string::npos);
}

TEST(Inst2vec, StatementsTravelAsAJsonList) {
  EXPECT_EQ(inst2vecStatementsJson({"ret void", "switch i8 <%ID>, label <%ID> [\n i8 <INT>, label <%ID>]"}),
            R"(["ret void","switch i8 <%ID>, label <%ID> [\n i8 <INT>, label <%ID>]"])");
  EXPECT_EQ(inst2vecStatementsJson({}), "[]");
}

}  // namespace
}  // namespace forkgym::passes
